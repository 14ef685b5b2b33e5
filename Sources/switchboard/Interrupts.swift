import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Ctrl-C handling for commands that wait on the server (`prompt`, `attach`).
///
/// The first SIGINT runs `action` (cancel the call: the client sends a Cancel frame and
/// the command exits with CANCELLED); a second one runs `beforeExit` (a last note on
/// stderr) and exits at once, in case the first could not get through.
final class InterruptHandler {
    private let source: any DispatchSourceSignal
    private let count = Counter()

    init(beforeExit: @escaping @Sendable () -> Void = {}, _ action: @escaping @Sendable () -> Void) {
        signal(SIGINT, SIG_IGN)
        let count = self.count
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            if count.increment() == 1 {
                action()
            } else {
                beforeExit()
                _exit(ExitCodes.forStatus(.cancelled))
            }
        }
        source.resume()
    }

    /// Whether Ctrl-C was pressed (so a CANCELLED stream was ended by it).
    var interrupted: Bool { count.current > 0 }

    /// Stops handling SIGINT (it stays ignored; the command is about to exit anyway).
    func cancel() {
        source.cancel()
    }
}

/// Runs `body` (a `prompt` or `attach` stream) in a task that the first Ctrl-C
/// cancels; when Ctrl-C ended it, or a second one exits, says on stderr if `turn`
/// keeps running and how to follow it.
func runInterruptibly(_ turn: FollowedTurn, _ body: @escaping @Sendable () async throws -> Void) async throws {
    let task = Task { try await body() }
    let interrupt = InterruptHandler(beforeExit: {
        if let note = turn.noteAfterInterrupt(hardExit: true) { Console.err(note) }
    }) {
        task.cancel()
    }
    defer { interrupt.cancel() }
    do {
        try await task.value
    } catch {
        if interrupt.interrupted, let note = turn.noteAfterInterrupt(hardExit: false) { Console.err(note) }
        throw error
    }
}

private final class Counter: Sendable {
    private let value = Atomic<Int>(0)

    func increment() -> Int { value.add(1, ordering: .relaxed).newValue }

    var current: Int { value.load(ordering: .relaxed) }
}
