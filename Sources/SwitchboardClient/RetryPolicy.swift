import SwitchboardProtocol

/// How ``SwitchboardClient/call(_:socketPath:configuration:)`` retries a call that
/// the server never processed: refused by a GoAway (a drain: the call was above
/// `last_call_id`), by a connection that closed or was refused before any reply,
/// or by a socket with nobody accepting (the server is restarting, e.g. a
/// socket-activated server that exited on idle). Retries wait with exponential
/// backoff until the socket accepts again, within ``totalBudget``.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first one included; 1 disables retrying.
    public var maxAttempts: Int = 10
    /// The wait before the first retry; each later wait doubles, up to ``maxBackoff``.
    public var initialBackoff: Duration = .milliseconds(50)
    public var maxBackoff: Duration = .seconds(1)
    /// No retry starts after this long since the first attempt.
    public var totalBudget: Duration = .seconds(5)

    public init() {}

    /// Never retry.
    public static let disabled: RetryPolicy = {
        var policy = RetryPolicy()
        policy.maxAttempts = 1
        return policy
    }()

    /// Whether `error` says the server did not process the call (so trying again
    /// cannot do it twice). Only transport-level refusals qualify; any answer from
    /// the server about the call itself does not.
    public static func isRefusedBeforeProcessing(_ error: SwitchboardError) -> Bool {
        guard error.code == .unavailable else { return false }
        let message = error.message
        return message.hasPrefix("no server at ")
            || (message.hasPrefix("cannot connect to ") && !message.hasSuffix("socket path too long"))
            || message.hasPrefix("server is going away")
            || message.hasPrefix("server is shutting down")
            || message.hasPrefix("connection closed")
    }

    /// The wait before retry number `retry` (1-based), with up to 20% jitter.
    func backoff(beforeRetry retry: Int) -> Duration {
        var wait = initialBackoff
        for _ in 1..<max(retry, 1) {
            wait = min(wait * 2, maxBackoff)
        }
        let jitter = Double.random(in: 0.8...1.0)
        return min(wait, maxBackoff) * jitter
    }
}

/// A call that ``SwitchboardClient/call(_:socketPath:configuration:)`` may safely
/// run again on a new connection: reads (health, status, get, list) and creating a
/// session whose id the client chose. A retried create whose first attempt did
/// reach the server fails with `ALREADY_EXISTS`, reported as it is. Prompts and
/// closes are not offered: they are not safe to repeat.
public struct RetryableCall<Result: Sendable>: Sendable {
    let name: String
    /// False: run once, never retried (a create with a server-chosen id).
    let retryable: Bool
    let body: @Sendable (SwitchboardClient) async throws -> Result
}

extension RetryableCall where Result == ServingStatus {
    public static var health: Self { Self(name: "health", retryable: true) { try await $0.health() } }
}

extension RetryableCall where Result == HealthCheckResponse {
    public static var healthCheck: Self { Self(name: "health", retryable: true) { try await $0.healthCheck() } }
}

extension RetryableCall where Result == ServerStatus {
    public static func serverStatus(includeSessions: Bool = false) -> Self {
        Self(name: "serverStatus", retryable: true) { try await $0.serverStatus(includeSessions: includeSessions) }
    }
}

extension RetryableCall where Result == SessionStatus {
    public static func sessionStatus(id: String) -> Self {
        Self(name: "sessionStatus", retryable: true) { try await $0.sessionStatus(id: id) }
    }
}

extension RetryableCall where Result == Session {
    public static func getSession(id: String) -> Self {
        Self(name: "getSession", retryable: true) { try await $0.getSession(id: id) }
    }

    /// Retried only when `request.sessionID` is set (the client chose the id).
    public static func createSession(_ request: CreateSessionRequest) -> Self {
        Self(name: "createSession", retryable: !request.sessionID.isEmpty) { try await $0.createSession(request) }
    }
}

extension RetryableCall where Result == ListSessionsResponse {
    public static func listSessions(_ request: ListSessionsRequest) -> Self {
        Self(name: "listSessions", retryable: true) { try await $0.listSessions(request) }
    }
}

extension RetryableCall where Result == [Session] {
    /// Every page of the list, fetched on one connection (all pages again on a retry).
    public static func listAllSessions(labelSelector: [Label] = []) -> Self {
        Self(name: "listSessions", retryable: true) { client in
            var sessions: [Session] = []
            var token = ""
            repeat {
                let page = try await client.listSessions(
                    ListSessionsRequest(labelSelector: labelSelector, pageSize: 1000, pageToken: token)
                )
                sessions += page.sessions
                token = page.nextPageToken
            } while !token.isEmpty
            return sessions
        }
    }
}

extension RetryableCall where Result == ListTurnsResponse {
    public static func listTurns(_ request: ListTurnsRequest) -> Self {
        Self(name: "listTurns", retryable: true) { try await $0.listTurns(request) }
    }
}

extension RetryableCall where Result == [TurnHistoryEntry] {
    /// Every kept turn of a session, oldest first, fetched on one connection (all
    /// pages again on a retry).
    public static func listAllTurns(sessionID: String, includeOutput: Bool = false) -> Self {
        Self(name: "listTurns", retryable: true) { client in
            try await client.turnHistory(sessionID: sessionID, includeOutput: includeOutput, pageSize: 100).collect()
        }
    }
}

extension SwitchboardClient {
    /// Connects, runs one ``RetryableCall`` and closes; when the connection or the
    /// call is refused before the server processed it, reconnects and tries again
    /// as ``ClientConfiguration/retry`` allows. The last error is thrown when the
    /// attempts or the budget run out.
    public static func call<R: Sendable>(
        _ call: RetryableCall<R>,
        socketPath: String,
        configuration: ClientConfiguration = .init()
    ) async throws -> R {
        let policy = call.retryable ? configuration.retry : .disabled
        let start = ContinuousClock.now
        var attempt = 1
        while true {
            do {
                return try await withSwitchboardClient(socketPath: socketPath, configuration: configuration, call.body)
            } catch let error as SwitchboardError {
                let elapsed = ContinuousClock.now - start
                guard attempt < policy.maxAttempts, RetryPolicy.isRefusedBeforeProcessing(error), !Task.isCancelled else {
                    throw error
                }
                let wait = policy.backoff(beforeRetry: attempt)
                guard elapsed + wait < policy.totalBudget else { throw error }
                do {
                    try await Task.sleep(for: wait)
                } catch {
                    throw SwitchboardError(code: .cancelled, message: "cancelled while retrying \(call.name)")
                }
                attempt += 1
            }
        }
    }
}
