#if canImport(Glibc)
import Glibc
#endif

/// Runs blocking work (exec pipes, the SQLite store's writer) on a detached
/// thread of its own, off Swift's small cooperative pool. SIGPIPE is blocked on
/// it, so writing to a pipe whose reader has gone returns EPIPE instead of
/// killing the process.
package enum DedicatedThread {
    private final class Work {
        let body: @Sendable () -> Void
        init(body: @escaping @Sendable () -> Void) {
            self.body = body
        }
    }

    /// Starts `body` on a new thread; returns the `pthread_create` error, if any.
    package static func start(_ body: @escaping @Sendable () -> Void) -> Int32? {
        let work = Unmanaged.passRetained(Work(body: body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { argument in
            let work = Unmanaged<Work>.fromOpaque(argument!).takeRetainedValue()
            var blocked = sigset_t()
            sigemptyset(&blocked)
            sigaddset(&blocked, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &blocked, nil)
            work.body()
            return nil
        }, work)
        guard result == 0 else {
            Unmanaged<Work>.fromOpaque(work).release()
            return result
        }
        pthread_detach(thread)
        return nil
    }
}
