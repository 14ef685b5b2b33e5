#if canImport(Glibc)
import Glibc
#endif
import Synchronization

extension Mutex where Value: ~Copyable {
    /// `withLock`, plus happens-before annotations for ThreadSanitizer.
    ///
    /// On Linux a contended `Mutex` hands ownership over in the kernel (PI futex)
    /// inside the uninstrumented standard library, so TSan sees no synchronisation
    /// between two critical sections and reports false "Swift access races". The
    /// annotations mark the mutex as acquired on entry and released on exit, before
    /// and after any access to the value. Outside TSan builds they are a nil check.
    package borrowing func withLockAnnotated<Result, Failure: Error>(
        _ body: (inout sending Value) throws(Failure) -> sending Result
    ) throws(Failure) -> sending Result {
        // A `Mutex` is never copied or moved (`~Copyable`, `@_staticExclusiveOnly`):
        // its address identifies it for as long as it lives.
        let address = withUnsafePointer(to: self) { UnsafeRawPointer($0) }
        return try withLock { (value: inout sending Value) throws(Failure) -> sending Result in
            ThreadSanitizer.acquire(address)
            defer { ThreadSanitizer.release(address) }
            return try body(&value)
        }
    }
}

/// The TSan runtime's annotation hooks, found at run time (absent unless the
/// process was built with `-sanitize=thread`).
package enum ThreadSanitizer {
    private typealias Hook = @convention(c) (UnsafeRawPointer?) -> Void

    private static let acquireHook: Hook? = lookup("__tsan_acquire")
    private static let releaseHook: Hook? = lookup("__tsan_release")

    private static func lookup(_ name: String) -> Hook? {
        guard let symbol = dlsym(nil, name) else { return nil }
        return unsafeBitCast(symbol, to: Hook.self)
    }

    package static func acquire(_ address: UnsafeRawPointer) {
        acquireHook?(address)
    }

    package static func release(_ address: UnsafeRawPointer) {
        releaseHook?(address)
    }
}
