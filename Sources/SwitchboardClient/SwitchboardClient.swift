import NIOCore
import NIOPosix
import SwitchboardProtocol
import SwitchboardTransport

/// Connects to the Switchboard server at `socketPath`, runs `body` with the client and
/// closes the connection when `body` returns or throws.
///
/// The scoped form is the one to prefer: the connection cannot outlive its use.
public func withSwitchboardClient<R: Sendable>(
    socketPath: String,
    configuration: ClientConfiguration = .init(),
    _ body: (SwitchboardClient) async throws -> R
) async throws -> R {
    let client = try await SwitchboardClient.connect(socketPath: socketPath, configuration: configuration)
    do {
        let result = try await body(client)
        await client.close()
        return result
    } catch {
        await client.close()
        throw error
    }
}

/// A thin async client of a Switchboard server over one Unix-socket connection.
///
/// Any number of calls may run at once from any number of tasks; they are multiplexed
/// on the one connection by call id. Every error thrown is a `SwitchboardError`:
/// the server's status for a failed call, `UNAVAILABLE` when the connection is lost or
/// the server goes away before taking the call, `CANCELLED` when the calling task is
/// cancelled (the server is told with a Cancel frame).
public final class SwitchboardClient: Sendable {
    /// What the server said in its handshake: protocol version, limits, connection id.
    public let welcome: Welcome

    let socketPath: String
    let configuration: ClientConfiguration
    let channel: any Channel
    let handler: NIOLoopBound<ClientHandler>

    private init(socketPath: String, configuration: ClientConfiguration, channel: any Channel, handshake: Handshake) {
        self.socketPath = socketPath
        self.configuration = configuration
        self.channel = channel
        self.welcome = handshake.welcome
        self.handler = handshake.handler
    }

    deinit {
        // A client dropped without `close()` must not leak its socket.
        self.channel.close(promise: nil)
    }

    /// Opens a connection and performs the handshake.
    ///
    /// Throws `UNAVAILABLE` "no server at PATH" when nothing exists at the path,
    /// `UNAVAILABLE` "cannot connect to PATH: …" for other connect failures or a
    /// handshake that does not finish within `connectTimeout`, and the server's own
    /// code and message when it answers the handshake with a GoAway.
    public static func connect(socketPath: String, configuration: ClientConfiguration = .init()) async throws -> SwitchboardClient {
        let (channel, handshake) = try await Connector.connect(socketPath: socketPath, configuration: configuration)
        return SwitchboardClient(socketPath: socketPath, configuration: configuration, channel: channel, handshake: handshake)
    }

    /// Closes the connection. Calls still open fail with `CANCELLED` "client closed".
    /// Safe to call more than once.
    public func close() async {
        let handler = self.handler
        handler.eventLoop.execute {
            handler.value.shutdown(SwitchboardError(code: .cancelled, message: "client closed"))
        }
        try? await self.channel.closeFuture.get()
    }

    // MARK: - Sessions

    /// Creates a session; the request may choose its id, labels and settings.
    /// Labels that break ``LabelRules`` are refused here (INVALID_ARGUMENT, as
    /// the server would), without a call.
    public func createSession(_ request: CreateSessionRequest = .init()) async throws -> Session {
        // Encoding first, then the label rules: the server's order (it checks strings as it decodes).
        try Frame(kind: .start(CallStart(method: MethodName.createSession, payload: .createSessionRequest(request))))
            .checkStringsBeforeSending()
        try LabelRules.validate(request.labels)
        let response = try await self.unary(MethodName.createSession, .createSessionRequest(request))
        guard case .session(let session)? = response else { throw Self.unexpected(response, MethodName.createSession) }
        return session
    }

    /// Fetches one session (`NOT_FOUND` when there is none with this id).
    public func getSession(id: String) async throws -> Session {
        let response = try await self.unary(MethodName.getSession, .getSessionRequest(GetSessionRequest(sessionID: id)))
        guard case .session(let session)? = response else { throw Self.unexpected(response, MethodName.getSession) }
        return session
    }

    /// One page of sessions; pass `nextPageToken` back as `pageToken` for the next one.
    public func listSessions(_ request: ListSessionsRequest = .init()) async throws -> ListSessionsResponse {
        let response = try await self.unary(MethodName.listSessions, .listSessionsRequest(request))
        guard case .listSessionsResponse(let list)? = response else { throw Self.unexpected(response, MethodName.listSessions) }
        return list
    }

    /// Closes a session: its running turn is cancelled and its queued prompts fail.
    public func closeSession(id: String, reason: String = "") async throws -> CloseSessionResponse {
        let request = CloseSessionRequest(sessionID: id, reason: reason)
        let response = try await self.unary(MethodName.closeSession, .closeSessionRequest(request))
        guard case .closeSessionResponse(let closed)? = response else { throw Self.unexpected(response, MethodName.closeSession) }
        return closed
    }

    // MARK: - Prompts

    /// Sends `prompt` to a session and streams the turn's events.
    ///
    /// Nothing is sent until the stream is iterated. See ``PromptStream`` for
    /// cancellation and backpressure.
    /// - Parameters:
    ///   - whenBusy: wait in the session's queue, or fail at once with
    ///     `FAILED_PRECONDITION` when a turn is running or queued.
    ///   - timeout: the call's deadline (queue wait included); defaults to the
    ///     configuration's `defaultCallTimeout`. With re-attaching it bounds the
    ///     whole stream, re-attaches included.
    ///   - cancelOnDisconnect: cancel the turn when this connection goes away,
    ///     instead of letting it run on (the server's default) for a later attach.
    ///   - resume: what a lost connection does; defaults to the configuration's
    ///     ``ClientConfiguration/resume``. See ``ResumePolicy``.
    ///   - onReattach: called (from the iterating task) each time the stream has
    ///     re-attached, with the server's view of the turn at that moment.
    public func prompt(
        sessionID: String,
        _ prompt: String,
        whenBusy: BusyPolicy = .wait,
        timeout: Duration? = nil,
        cancelOnDisconnect: Bool = false,
        resume: ResumePolicy? = nil,
        onReattach: (@Sendable (TurnAttached) -> Void)? = nil
    ) -> PromptStream {
        PromptStream(
            client: self,
            call: .prompt(PromptRequest(sessionID: sessionID, prompt: prompt, whenBusy: whenBusy, cancelOnDisconnect: cancelOnDisconnect)),
            timeout: timeout ?? self.configuration.defaultCallTimeout,
            resume: resume ?? self.configuration.resume,
            onReattach: onReattach
        )
    }

    /// Follows a turn: replays its kept output after chunk `afterSequence`, then
    /// follows it live to its end.
    ///
    /// The first event is `.attached` (the turn's id, state and last sequence number
    /// so far), then `.output` with sequence numbers above `afterSequence`, then
    /// `.finished`; iteration then ends as the turn did: normally for `OK`, else
    /// with its status (`ABORTED` for a turn a server restart interrupted,
    /// `OUT_OF_RANGE` when retention dropped the output asked for, `NOT_FOUND` for
    /// an unknown session or turn). Breaking out of the loop stops following; it is
    /// the server's to say whether that affects the turn (attaching is watching).
    /// - Parameters:
    ///   - turnID: empty = the session's running turn, else its most recent one.
    ///   - timeout: the call's deadline; defaults to the configuration's `defaultCallTimeout`.
    public func attach(sessionID: String, turnID: String = "", afterSequence: UInt64 = 0, timeout: Duration? = nil) -> PromptStream {
        PromptStream(
            client: self,
            call: .attach(AttachRequest(sessionID: sessionID, turnID: turnID, afterSequence: afterSequence)),
            timeout: timeout ?? self.configuration.defaultCallTimeout
        )
    }

    // MARK: - History

    /// One page of a session's kept turns, oldest first; pass `nextPageToken` back
    /// as `pageToken` for the next one (see ``turnHistory(sessionID:includeOutput:pageSize:)``
    /// for all of them).
    public func listTurns(_ request: ListTurnsRequest) async throws -> ListTurnsResponse {
        let response = try await self.unary(MethodName.listTurns, .listTurnsRequest(request))
        guard case .listTurnsResponse(let list)? = response else { throw Self.unexpected(response, MethodName.listTurns) }
        return list
    }

    /// Every kept turn of a session, oldest first, fetched a page at a time as the
    /// sequence is iterated (so a history with output need not fit in memory at once).
    public func turnHistory(sessionID: String, includeOutput: Bool = false, pageSize: UInt32 = 0) -> TurnHistory {
        TurnHistory(client: self, request: ListTurnsRequest(sessionID: sessionID, pageSize: pageSize, includeOutput: includeOutput))
    }

    // MARK: - Status and health

    /// Server-wide counters; with `includeSessions` also a summary of every session.
    public func serverStatus(includeSessions: Bool = false) async throws -> ServerStatus {
        let request = ServerStatusRequest(includeSessions: includeSessions)
        let response = try await self.unary(MethodName.getServerStatus, .serverStatusRequest(request))
        guard case .serverStatus(let status)? = response else { throw Self.unexpected(response, MethodName.getServerStatus) }
        return status
    }

    /// One session and its recent turns.
    public func sessionStatus(id: String) async throws -> SessionStatus {
        let request = SessionStatusRequest(sessionID: id)
        let response = try await self.unary(MethodName.getSessionStatus, .sessionStatusRequest(request))
        guard case .sessionStatus(let status)? = response else { throw Self.unexpected(response, MethodName.getSessionStatus) }
        return status
    }

    /// `SERVING`, or `NOT_SERVING` while the server drains or its session store
    /// cannot write (``healthCheck()`` says which).
    public func health() async throws -> ServingStatus {
        try await healthCheck().status
    }

    /// The health answer with its reason (why `NOT_SERVING`).
    public func healthCheck() async throws -> HealthCheckResponse {
        let response = try await self.unary(MethodName.healthCheck, .healthCheckRequest(HealthCheckRequest()))
        guard case .healthCheckResponse(let health)? = response else { throw Self.unexpected(response, MethodName.healthCheck) }
        return health
    }

    /// One Ping/Pong round trip on the connection (liveness, and the cheapest latency probe).
    public func ping() async throws {
        if Task.isCancelled { throw Self.cancelledError }
        let handler = self.handler
        let ticket = CallTicket(eventLoop: handler.eventLoop)
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: ClientHandler.PingContinuation) in
                handler.eventLoop.execute {
                    handler.value.startPing(ticket: ticket, continuation: continuation)
                }
            }
        } onCancel: {
            handler.eventLoop.execute {
                handler.value.cancel(ticket, error: Self.cancelledError)
            }
        }
        try result.get()
    }

    // MARK: - Internals

    static let cancelledError = SwitchboardError(code: .cancelled, message: "cancelled by the client")

    /// One unary call: a single `CallStart` (request + half-close) out, a single
    /// `CallEnd` (status + response) back. A request string with a NUL byte fails
    /// with INVALID_ARGUMENT before anything is sent. The continuation is resumed on the event
    /// loop as the CallEnd is read.
    func unary(_ method: String, _ payload: Payload, timeout: Duration? = nil) async throws(SwitchboardError) -> Payload? {
        if Task.isCancelled { throw Self.cancelledError }
        let timeout = timeout ?? self.configuration.defaultCallTimeout
        if let timeout, !timeout.isPositive {
            throw SwitchboardError(code: .deadlineExceeded, message: "deadline exceeded (timeout \(timeout))")
        }
        let start = CallStart(method: method, timeoutMs: timeout?.wireMilliseconds ?? 0, payload: payload, halfClose: true)
        // A NUL would be cut off on the wire; refuse it here with the server's answer.
        try Frame(kind: .start(start)).checkStringsBeforeSending()
        let handler = self.handler
        let ticket = CallTicket(eventLoop: handler.eventLoop)
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: ClientHandler.UnaryContinuation) in
                handler.eventLoop.execute {
                    handler.value.startUnary(start, ticket: ticket, localDeadline: timeout, continuation: continuation)
                }
            }
        } onCancel: {
            handler.eventLoop.execute {
                handler.value.cancel(ticket, error: Self.cancelledError)
            }
        }
        return try result.get()
    }

    static func unexpected(_ payload: Payload?, _ method: String) -> SwitchboardError {
        SwitchboardError(
            code: .internal,
            message: "unexpected response to \(method): \(payload?.caseName ?? "no payload")"
        )
    }
}
