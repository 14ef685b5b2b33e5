#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SwitchboardCore

/// How `session/request_permission` is answered while no person is asked.
public enum AgentPermissionPolicy: String, Sendable {
    /// The first `allow_once` option, else `allow_always`; none: `cancelled`.
    case allow
    /// The first `reject_once` option, else `reject_always`; none: `cancelled`.
    case deny
}

/// One `session/update` of a prompt: message text, or any other kind as sent.
public enum AgentUpdate: Sendable, Equatable {
    /// `agent_message_chunk` with text content: the turn's output.
    case messageText(String)
    /// Every other update (thoughts, tool calls, plans, usage, non-text content,
    /// unknown kinds): its `sessionUpdate` kind and the update object's JSON exactly
    /// as the agent wrote it.
    case event(kind: String, json: String)
}

/// What went wrong talking to an agent.
public enum AgentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The process ended (exit, crash, garbage, too-long line, kill); with its stderr tail.
    case ended(AgentExit)
    /// `initialize` and `session/new` did not finish in time; the group was killed.
    case handshakeTimeout(Duration, stderrTail: String)
    /// The agent answered a request with a JSON-RPC error.
    case rpc(method: String, JSONRPCError)
    /// The agent's answer lacks what ACP requires.
    case badResult(method: String, reason: String)
    case spawn(AgentSpawnError)
    /// A prompt is already in flight on this connection.
    case busy

    public var description: String {
        switch self {
        case .ended(let exit): exit.description
        case .handshakeTimeout(let timeout, let tail):
            "agent did not finish initialize and session/new within \(timeout)"
                + (tail.trimmingTrailingNewlines.isEmpty ? "" : "; stderr: \(tail.trimmingTrailingNewlines)")
        case .rpc(let method, let error): "agent answered \(method) with error \(error.code): \(error.message)"
        case .badResult(let method, let reason): "agent answered \(method) with a bad result: \(reason)"
        case .spawn(let error): error.description
        case .busy: "a prompt is already in flight"
        }
    }
}

/// What `cancel(grace:killGrace:)` came to.
public enum AgentCancelOutcome: Sendable, Equatable {
    /// The prompt ended within the grace (normally with stopReason `cancelled`).
    case promptEnded
    /// No prompt was in flight.
    case nothingToCancel
    /// The grace ran out: the group got SIGTERM, then SIGKILL; the process is gone.
    case killed
}

/// The result of the handshake.
public struct AgentHandshake: Sendable, Equatable {
    public let sessionID: String
    /// `agentCapabilities.loadSession`: a fresh process can `session/load` this session.
    public let loadSession: Bool
}

/// An ACP client connection to one agent process: requests with ids, responses
/// matched to them, `session/update` streamed to the prompt in flight,
/// `session/request_permission` answered by policy, other agent requests refused
/// (-32601: we advertise no fs or terminal).
///
/// One prompt at a time (the session's turn queue serialises turns; a second
/// concurrent prompt is refused with `.busy`). All callbacks run on the process's
/// reader thread; state is behind one `Mutex`, never held across an `await`.
public final class AgentConnection: Sendable {
    public let process: AgentProcess
    public let permissionPolicy: AgentPermissionPolicy

    private struct State {
        var nextID = 1
        var pending: [Int: (method: String, continuation: CheckedContinuation<JSONValue, any Error>)] = [:]
        var updateSink: (@Sendable (AgentUpdate) -> Void)?
        var promptID: Int?
        var cancelling = false
        var sessionID: String?
        var exit: AgentExit?
        var handshakeTimedOut: Duration?
        /// Set when the handshake's body returned: the timer no longer fires.
        var handshakeSettled = false
        var droppedUpdates = 0
    }

    private let state: Mutex<State>

    private init(process: AgentProcess, permissionPolicy: AgentPermissionPolicy) {
        self.process = process
        self.permissionPolicy = permissionPolicy
        self.state = Mutex(State())
    }

    /// A connection nobody holds can never be closed: its process is killed.
    deinit {
        process.kill(reason: "connection released")
    }

    /// Spawns the agent (no handshake yet).
    public static func spawn(launch: AgentLaunch, permissionPolicy: AgentPermissionPolicy) throws(AgentError) -> AgentConnection {
        let box = ConnectionBox()
        let process: AgentProcess
        do {
            process = try AgentProcess(launch: launch) { event in box.deliver(event) }
        } catch {
            throw .spawn(error)
        }
        let connection = AgentConnection(process: process, permissionPolicy: permissionPolicy)
        box.attach(connection)
        return connection
    }

    /// The ACP session id once `handshake` or `load` succeeded.
    public var sessionID: String? { state.withLock { $0.sessionID } }

    /// The end of the process, once it ended.
    public var exit: AgentExit? { state.withLock { $0.exit } }

    /// `initialize` (protocol version 1, no fs or terminal capabilities) then
    /// `session/new` in `cwd`, both within `timeout`; past it the group is killed.
    public func handshake(cwd: String, timeout: Duration) async throws(AgentError) -> AgentHandshake {
        try await withHandshakeTimeout(timeout) { () throws(AgentError) -> AgentHandshake in
            let capabilities = try await self.initialize()
            let result = try await self.request("session/new", params: .object(["cwd": .string(cwd), "mcpServers": .array([])]))
            guard let sessionID = result["sessionId"]?.stringValue else {
                throw .badResult(method: "session/new", reason: "no sessionId")
            }
            self.state.withLock { $0.sessionID = sessionID }
            return AgentHandshake(sessionID: sessionID, loadSession: capabilities)
        }
    }

    /// `initialize` then `session/load` of `sessionID` in `cwd` within `timeout`; the
    /// conversation the agent replays is counted and dropped (Switchboard has it).
    /// Returns how many updates were replayed.
    public func load(sessionID: String, cwd: String, timeout: Duration) async throws(AgentError) -> Int {
        try await withHandshakeTimeout(timeout) { () throws(AgentError) -> Int in
            let loadSession = try await self.initialize()
            guard loadSession else { throw .badResult(method: "initialize", reason: "agent does not support session/load") }
            self.state.withLock { state in
                state.droppedUpdates = 0
                state.updateSink = nil
            }
            _ = try await self.request(
                "session/load",
                params: .object(["sessionId": .string(sessionID), "cwd": .string(cwd), "mcpServers": .array([])])
            )
            return self.state.withLock { state in
                state.sessionID = sessionID
                return state.droppedUpdates
            }
        }
    }

    /// `session/prompt` with one text block; each `session/update` goes to
    /// `onUpdate` (on the reader thread, in order). Returns the stop reason.
    public func prompt(_ text: String, onUpdate: @escaping @Sendable (AgentUpdate) -> Void) async throws(AgentError) -> String {
        let sessionID: String = try state.withLock { state throws(AgentError) in
            guard state.updateSink == nil, state.promptID == nil else { throw .busy }
            guard let sessionID = state.sessionID else { throw .badResult(method: "session/prompt", reason: "no ACP session yet") }
            state.updateSink = onUpdate
            state.cancelling = false
            return sessionID
        }
        defer {
            state.withLock { state in
                state.updateSink = nil
                state.promptID = nil
            }
        }
        let result = try await request(
            "session/prompt",
            params: .object([
                "sessionId": .string(sessionID),
                "prompt": .array([.object(["type": .string("text"), "text": .string(text)])]),
            ]),
            isPrompt: true
        )
        guard let stopReason = result["stopReason"]?.stringValue else {
            throw .badResult(method: "session/prompt", reason: "no stopReason")
        }
        return stopReason
    }

    /// `session/cancel`; permission requests from now on are answered `cancelled`.
    /// Waits up to `grace` for the prompt in flight to end; past it the group gets
    /// SIGTERM and, after `killGrace`, SIGKILL, and this waits for the process's end.
    public func cancel(grace: Duration, killGrace: Duration) async -> AgentCancelOutcome {
        let sessionID: String? = state.withLock { state in
            guard state.promptID != nil, state.exit == nil else { return nil }
            state.cancelling = true
            return state.sessionID
        }
        guard let sessionID else { return .nothingToCancel }
        process.send(JSONRPCMessage.notificationLine(method: "session/cancel", params: .object(["sessionId": .string(sessionID)])))
        if await waitUntil(within: grace, { $0.promptID == nil || $0.exit != nil }) {
            return .promptEnded
        }
        process.terminate(reason: "no answer to session/cancel within \(grace)", killAfter: killGrace)
        _ = await waitUntil(within: nil) { $0.exit != nil }
        return .killed
    }

    /// Ends the process: stdin closed, SIGTERM now, SIGKILL after `killGrace`.
    public func close(killGrace: Duration) {
        process.closeStdin()
        process.terminate(reason: "closed", killAfter: killGrace)
    }

    /// Waits for the process to end and returns how it ended.
    public func waitForExit() async -> AgentExit {
        _ = await waitUntil(within: nil) { $0.exit != nil }
        return state.withLock { $0.exit! }
    }

    // MARK: Internals

    private func initialize() async throws(AgentError) -> Bool {
        let result = try await request(
            "initialize",
            params: .object([
                "protocolVersion": .int(1),
                "clientCapabilities": .object([
                    "fs": .object(["readTextFile": .bool(false), "writeTextFile": .bool(false)]),
                    "terminal": .bool(false),
                ]),
            ])
        )
        guard result["protocolVersion"]?.intValue == 1 else {
            throw .badResult(method: "initialize", reason: "protocolVersion is not 1")
        }
        return result["agentCapabilities"]?["loadSession"]?.boolValue ?? false
    }

    private func withHandshakeTimeout<T: Sendable>(
        _ timeout: Duration,
        _ body: @escaping @Sendable () async throws(AgentError) -> T
    ) async throws(AgentError) -> T {
        // A DeadlineTimer, not a cancelled Task.sleep: the runtime keeps a cancelled
        // sleep's wake-up job until its original deadline (ARCHITECTURE, "Timers").
        let timer = DeadlineTimer(deadline: .now + timeout) { [process] in
            let fire = self.state.withLock { state -> Bool in
                guard state.exit == nil, !state.handshakeSettled else { return false }
                state.handshakeTimedOut = timeout
                return true
            }
            if fire { process.kill(reason: "handshake timeout") }
        }
        defer { timer.cancel() }
        do throws(AgentError) {
            let value = try await body()
            // Settled under the lock, so a timer firing at this moment either
            // finds the handshake done or has already killed the agent.
            let timedOut = state.withLock { state -> Duration? in
                state.handshakeSettled = true
                return state.handshakeTimedOut
            }
            if let timedOut { throw AgentError.handshakeTimeout(timedOut, stderrTail: process.stderrTail) }
            return value
        } catch {
            if case .ended(let exit) = error, let timeout = state.withLock({ $0.handshakeTimedOut }) {
                throw .handshakeTimeout(timeout, stderrTail: exit.stderrTail)
            }
            throw error
        }
    }

    private func request(_ method: String, params: JSONValue, isPrompt: Bool = false) async throws(AgentError) -> JSONValue {
        do {
            return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONValue, any Error>) in
                let id: Int? = state.withLock { state in
                    if let exit = state.exit {
                        continuation.resume(throwing: AgentError.ended(exit))
                        return nil
                    }
                    let id = state.nextID
                    state.nextID += 1
                    state.pending[id] = (method, continuation)
                    if isPrompt { state.promptID = id }
                    return id
                }
                if let id {
                    process.send(JSONRPCMessage.requestLine(id: id, method: method, params: params))
                }
            }
        } catch let error as AgentError {
            throw error
        } catch {
            throw .badResult(method: method, reason: "\(error)")
        }
    }

    /// Polls `condition` on the state every few milliseconds, up to `within` (nil:
    /// until it holds). Cancel and exit are rare, slow paths: polling keeps them
    /// free of continuation bookkeeping.
    private func waitUntil(within limit: Duration?, _ condition: @Sendable (State) -> Bool) async -> Bool {
        let start = ContinuousClock.now
        while true {
            if state.withLock({ condition($0) }) { return true }
            if let limit, ContinuousClock.now - start >= limit { return false }
            do {
                try await Task.sleep(for: .milliseconds(5))
            } catch {
                // Cancelled: one last look instead of spinning on a failing sleep.
                return state.withLock { condition($0) }
            }
        }
    }

    fileprivate func handle(_ event: AgentProcess.Event) {
        switch event {
        case .message(let message):
            handle(message)
        case .ended(let exit):
            let pending = state.withLock { state in
                state.exit = exit
                let pending = state.pending
                state.pending = [:]
                return pending
            }
            for (_, entry) in pending { entry.continuation.resume(throwing: AgentError.ended(exit)) }
        }
    }

    private func handle(_ message: JSONRPCMessage) {
        switch message {
        case .response(let id, let result):
            guard let number = id.intValue else { return }
            let entry = state.withLock { state in
                let entry = state.pending.removeValue(forKey: number)
                if state.promptID == number { state.promptID = nil }
                return entry
            }
            guard let entry else { return }  // an answer to nothing we asked: ignored
            switch result {
            case .success(let value): entry.continuation.resume(returning: value)
            case .failure(let error): entry.continuation.resume(throwing: AgentError.rpc(method: entry.method, error))
            }
        case .notification(let method, let params, let line):
            guard method == "session/update", let update = params?.member("update") else { return }
            let sink = state.withLock { state in
                if state.updateSink == nil { state.droppedUpdates += 1 }
                return state.updateSink
            }
            guard let sink else { return }
            let kind = update.value["sessionUpdate"]?.stringValue ?? ""
            if kind == "agent_message_chunk", update.value["content"]?["type"] == .string("text"),
               let text = update.value["content"]?["text"]?.stringValue {
                sink(.messageText(text))
            } else {
                sink(.event(kind: kind, json: String(decoding: line[update.valueRange], as: UTF8.self)))
            }
        case .request(let id, let method, let params):
            let answer: Result<JSONValue, JSONRPCError>
            if method == "session/request_permission" {
                let cancelling = state.withLock { $0.cancelling }
                answer = .success(.object(["outcome": permissionOutcome(params?["options"]?.arrayValue ?? [], cancelling: cancelling)]))
            } else {
                answer = .failure(JSONRPCError(code: -32601, message: "method not found: \(method)"))
            }
            process.send(JSONRPCMessage.responseLine(id: id, result: answer))
        }
    }

    private func permissionOutcome(_ options: [JSONValue], cancelling: Bool) -> JSONValue {
        let cancelled = JSONValue.object(["outcome": .string("cancelled")])
        guard !cancelling else { return cancelled }
        let preferred = permissionPolicy == .allow ? ["allow_once", "allow_always"] : ["reject_once", "reject_always"]
        for kind in preferred {
            if let option = options.first(where: { $0["kind"]?.stringValue == kind }), let optionID = option["optionId"] {
                return .object(["outcome": .string("selected"), "optionId": optionID])
            }
        }
        return cancelled
    }
}

/// Hands process events to the connection once it exists (the process starts
/// its reader before the connection is built around it). Delivery happens under
/// the box's lock, so events held before `attach` keep their order. The
/// connection is held weakly: the process (which holds this box) must not keep
/// its connection alive.
private final class ConnectionBox: Sendable {
    private struct Target {
        weak var connection: AgentConnection?
        var attached = false
        var held: [AgentProcess.Event] = []
    }

    private let state = Mutex(Target())

    func deliver(_ event: AgentProcess.Event) {
        state.withLock { state in
            if state.attached {
                state.connection?.handle(event)
            } else {
                state.held.append(event)
            }
        }
    }

    func attach(_ connection: AgentConnection) {
        state.withLock { state in
            state.connection = connection
            state.attached = true
            for event in state.held { connection.handle(event) }
            state.held = []
        }
    }
}
