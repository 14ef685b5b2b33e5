#if canImport(Glibc)
import Glibc
#endif

/// Starts the store's writer on a detached thread of its own, off Swift's small
/// cooperative pool: it blocks on SQLite commits and fsyncs.
enum WriterThread {
    private final class Work {
        let body: @Sendable () -> Void
        init(body: @escaping @Sendable () -> Void) {
            self.body = body
        }
    }

    /// Starts `body` on a new thread; returns the `pthread_create` error, if any.
    static func start(_ body: @escaping @Sendable () -> Void) -> Int32? {
        let work = Unmanaged.passRetained(Work(body: body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { argument in
            let work = Unmanaged<Work>.fromOpaque(argument!).takeRetainedValue()
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
