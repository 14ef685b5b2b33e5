import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Ctrl-C handling for commands that wait on the server (`prompt`).
///
/// The first SIGINT runs `action` (cancel the call: the client sends a Cancel frame and
/// the command exits with CANCELLED); a second one exits at once, in case the first
/// could not get through.
final class InterruptHandler {
    private let source: any DispatchSourceSignal

    init(_ action: @escaping @Sendable () -> Void) {
        signal(SIGINT, SIG_IGN)
        let count = Counter()
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            if count.increment() == 1 {
                action()
            } else {
                _exit(ExitCodes.forStatus(.cancelled))
            }
        }
        source.resume()
    }

    /// Stops handling SIGINT (it stays ignored; the command is about to exit anyway).
    func cancel() {
        source.cancel()
    }
}

private final class Counter: Sendable {
    private let value = Atomic<Int>(0)

    func increment() -> Int { value.add(1, ordering: .relaxed).newValue }
}
