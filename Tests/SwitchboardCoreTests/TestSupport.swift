import Logging
import Synchronization
import SwitchboardCore
import SwitchboardProtocol
import Testing

/// A one-shot latch: `wait()` suspends until `open()`; cancellable.
final class Gate: Sendable {
    private struct State {
        var isOpen = false
        var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]
        var nextToken = 0
    }
    private let state = Mutex(State())

    func open() {
        let waiters = state.withLockAnnotated { state in
            state.isOpen = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async throws {
        let token = state.withLockAnnotated { state in
            state.nextToken += 1
            return state.nextToken
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: (any Error)?? = state.withLockAnnotated { state in
                    if state.isOpen { return .some(nil) }
                    if Task.isCancelled { return .some(CancellationError()) }
                    state.waiters[token] = continuation
                    return nil
                }
                switch resumeNow {
                case .some(nil): continuation.resume()
                case .some(let error?): continuation.resume(throwing: error)
                case nil: break
                }
            }
        } onCancel: {
            let waiter = state.withLockAnnotated { $0.waiters.removeValue(forKey: token) }
            waiter?.resume(throwing: CancellationError())
        }
    }
}

/// A backend whose turns block until the test releases them (by prompt), and that
/// records the order in which turns started. A prompt starting with "emit:" writes
/// the rest as one chunk before blocking.
final class GateBackend: Backend {
    private struct State {
        var started: [String] = []
        var cancelled: [String] = []
        var gates: [String: Gate] = [:]
    }
    private let state = Mutex(State())

    var startedPrompts: [String] { state.withLockAnnotated { $0.started } }
    var cancelledPrompts: [String] { state.withLockAnnotated { $0.cancelled } }

    func release(_ prompt: String) {
        gate(for: prompt).open()
    }

    private func gate(for prompt: String) -> Gate {
        state.withLockAnnotated { state in
            if let gate = state.gates[prompt] { return gate }
            let gate = Gate()
            state.gates[prompt] = gate
            return gate
        }
    }

    func runTurn(_ turn: TurnRequest, output: TurnOutput) async throws -> String {
        state.withLockAnnotated { $0.started.append(turn.prompt) }
        do {
            if turn.prompt.hasPrefix("emit:") {
                try await output.write(Array(turn.prompt.dropFirst(5).utf8))
            }
            try await gate(for: turn.prompt).wait()
        } catch {
            state.withLockAnnotated { $0.cancelled.append(turn.prompt) }
            throw error
        }
        return "released"
    }

    /// Waits until at least `count` turns have started.
    func waitForStarts(_ count: Int, sourceLocation: SourceLocation = #_sourceLocation) async {
        await eventually("\(count) turn(s) started", sourceLocation: sourceLocation) { self.startedPrompts.count >= count }
    }
}

/// A backend that writes a chunk every `interval`, `count` times.
struct TickingBackend: Backend {
    var interval: Duration
    var count: Int

    func runTurn(_ turn: TurnRequest, output: TurnOutput) async throws -> String {
        for index in 0..<count {
            try await Task.sleep(for: interval)
            try await output.write(Array("tick\(index) ".utf8))
        }
        return "done"
    }
}

/// Collects the events a turn's sink receives.
final class EventRecorder: Sendable {
    private let recorded = Mutex<[TurnEvent]>([])
    var events: [TurnEvent] { recorded.withLockAnnotated { $0 } }
    var chunks: [OutputChunk] {
        events.compactMap { if case .output(let chunk) = $0 { chunk } else { nil } }
    }
    var text: String { String(decoding: chunks.flatMap(\.data), as: UTF8.self) }

    var sink: @Sendable (TurnEvent) async throws -> Void {
        { event in self.recorded.withLockAnnotated { $0.append(event) } }
    }
}

/// Polls `condition` until it holds; records an issue after `timeout` (a hang
/// guard, stretched with the test time scale).
func eventually(
    _ what: String,
    timeout: Duration = TestTimeScale.seconds(10),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () -> Bool
) async {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now >= deadline {
            Issue.record("timed out waiting for: \(what)", sourceLocation: sourceLocation)
            return
        }
        try? await Task.sleep(for: .milliseconds(2))
    }
}

/// Awaits `task`, failing the test (and cancelling it) if it takes longer than
/// `timeout`, so a bug hangs one test for seconds, not the whole suite forever.
/// The default is a hang guard, not a window: 30 s (stretched under TSan), far
/// beyond any turn of these tests even on a loaded machine.
func value<T: Sendable>(
    of task: Task<T, Never>,
    within timeout: Duration = TestTimeScale.seconds(30),
    sourceLocation: SourceLocation = #_sourceLocation
) async -> T {
    let watchdog = Task {
        try await Task.sleep(for: timeout)
        Issue.record("task did not finish within \(timeout)", sourceLocation: sourceLocation)
        task.cancel()
    }
    let result = await task.value
    watchdog.cancel()
    return result
}

/// Expects `body` to throw a `SwitchboardError` with `code`; returns it.
@discardableResult
func expectError<T>(
    _ code: StatusCode,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws(SwitchboardError) -> T
) async -> SwitchboardError? {
    do {
        _ = try await body()
        Issue.record("expected \(code.name), got success", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    }
}

/// Expects `body` to throw a `SwitchboardError` with `code`; returns it.
@discardableResult
func expectError<T>(
    _ code: StatusCode,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws(SwitchboardError) -> T
) -> SwitchboardError? {
    do {
        _ = try body()
        Issue.record("expected \(code.name), got success", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    }
}

struct Harness {
    let registry: SessionRegistry
    let gate: GateBackend

    init(
        configuration: CoreConfiguration = CoreConfiguration(),
        echo: EchoBackend = EchoBackend(),
        exec: ExecBackend? = nil,
        extra: [String: any Backend] = [:],
        store: any SessionStore = InMemorySessionStore()
    ) {
        gate = GateBackend()
        var backends = BackendRegistry(echo: echo, exec: exec)
        backends.register(gate, named: "gate")
        for (name, backend) in extra { backends.register(backend, named: name) }
        var logger = Logger(label: "switchboard.core.tests")
        logger.logLevel = .critical
        registry = SessionRegistry(configuration: configuration, backends: backends, logger: logger, store: store)
    }

    @discardableResult
    func createSession(
        _ id: String = "",
        backend: String = "gate",
        labels: [Label] = [],
        settings: SessionSettings = SessionSettings()
    ) async throws(SwitchboardError) -> Session {
        var settings = settings
        settings.backend = backend
        return try await registry.createSession(CreateSessionRequest(sessionID: id, labels: labels, settings: settings), ownerUID: 1000)
    }

    func submit(
        _ sessionID: String,
        _ prompt: String,
        whenBusy: BusyPolicy = .wait,
        deadline: ContinuousClock.Instant? = nil
    ) throws(SwitchboardError) -> PendingTurn {
        try registry.submitPrompt(PromptRequest(sessionID: sessionID, prompt: prompt, whenBusy: whenBusy), deadline: deadline, caller: .server)
    }

    /// Starts running `turn` in a task of its own, recording its events.
    func start(_ turn: PendingTurn, recorder: EventRecorder = EventRecorder()) -> Task<TurnOutcome, Never> {
        Task { await turn.run(sink: recorder.sink) }
    }
}
