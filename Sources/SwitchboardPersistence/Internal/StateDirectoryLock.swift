#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SwitchboardProtocol

/// The exclusive claim of one server on a state directory: a POSIX record lock
/// (`fcntl(F_SETLK)`) on the `lock` file in it, which holds the owner's pid as
/// text.
///
/// Why a record lock and not `flock`: an `flock` belongs to the open file
/// description, and a child that any thread of this process forks shares that
/// description until it execs. A store closed and reopened while another thread
/// was spawning a process could then find its own, already released, lock
/// still held (seen in CI). Record locks belong to the process: a forked child
/// does not inherit them, and the kernel drops them when the process dies
/// however it dies, so a crash leaves no stale lock either.
///
/// Record locks never conflict within one process, and closing *any*
/// descriptor of the file drops the process's lock. So claims made by this
/// process are kept in ``claimed``, and a directory already claimed here is
/// refused before its lock file is opened again.
final class StateDirectoryLock: Sendable {
    let path: String
    private let descriptor: Int32
    private let file: FileIdentity

    /// Device and inode of a lock file: a directory reached by two paths is
    /// still one claim.
    private struct FileIdentity: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
        }
    }

    /// Lock files this process holds. Guarded across the whole of `acquire` and
    /// `release` (a few non-blocking system calls), so two claims in this
    /// process cannot race each other.
    private static let claimed = Mutex<Set<FileIdentity>>([])

    private init(path: String, descriptor: Int32, file: FileIdentity) {
        self.path = path
        self.descriptor = descriptor
        self.file = file
    }

    /// Creates `directory` (0700) when missing, then takes the lock or throws
    /// FAILED_PRECONDITION naming the pid that holds it.
    static func acquire(directory: String) throws(SwitchboardError) -> StateDirectoryLock {
        try createDirectory(directory)
        let path = directory + "/lock"
        return try claimed.withLockAnnotated { claimed throws(SwitchboardError) -> StateDirectoryLock in
            var info = stat()
            if stat(path, &info) == 0, claimed.contains(FileIdentity(info)) {
                throw inUse(directory, holder: getpid())
            }
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw SwitchboardError(
                    code: .failedPrecondition,
                    message: "cannot open \(path): \(String(cString: strerror(errno)))"
                )
            }
            guard fstat(fd, &info) == 0 else {
                let error = errno
                close(fd)
                throw SwitchboardError(code: .failedPrecondition, message: "cannot stat \(path): \(String(cString: strerror(error)))")
            }
            // Not ours (checked above, under the registry lock), so closing
            // this descriptor on failure cannot drop a lock this process holds.
            var request = wholeFileWriteLock()
            if fcntl(fd, F_SETLK, &request) != 0 {
                let error = errno
                let holder = holderPID(fd)
                close(fd)
                if error == EAGAIN || error == EACCES {
                    throw inUse(directory, holder: holder)
                }
                throw SwitchboardError(
                    code: .failedPrecondition,
                    message: "cannot lock \(path): \(String(cString: strerror(error)))"
                )
            }
            claimed.insert(FileIdentity(info))
            // Ours now: record our pid for tools that look at the file.
            let text = Array("\(getpid())\n".utf8)
            _ = ftruncate(fd, 0)
            _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            return StateDirectoryLock(path: path, descriptor: fd, file: FileIdentity(info))
        }
    }

    /// Releases the lock (closing the descriptor drops it). The file stays:
    /// removing it would race with a server that just opened it.
    func release() {
        Self.claimed.withLockAnnotated { claimed in
            close(descriptor)
            claimed.remove(file)
        }
    }

    private static func inUse(_ directory: String, holder: Int32?) -> SwitchboardError {
        let who = holder.map { "pid \($0)" } ?? "pid unknown"
        return SwitchboardError(
            code: .failedPrecondition,
            message: "state directory \(directory) is in use by another switchboard (\(who))"
        )
    }

    private static func wholeFileWriteLock() -> flock {
        var request = flock()
        request.l_type = Int16(F_WRLCK)
        request.l_whence = Int16(SEEK_SET)
        request.l_start = 0
        request.l_len = 0
        return request
    }

    /// The kernel's answer to who holds the lock (`F_GETLK`), which also
    /// names a holder that has not written its pid yet.
    private static func holderPID(_ fd: Int32) -> Int32? {
        var request = wholeFileWriteLock()
        guard fcntl(fd, F_GETLK, &request) == 0, request.l_type != Int16(F_UNLCK) else { return nil }
        return request.l_pid
    }

    private static func createDirectory(_ directory: String) throws(SwitchboardError) {
        var info = stat()
        if stat(directory, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw SwitchboardError(code: .failedPrecondition, message: "state directory \(directory) is not a directory")
            }
            return
        }
        // Create missing parents too (like `mkdir -p`), each 0700.
        var prefix = directory.hasPrefix("/") ? "/" : ""
        for component in directory.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw SwitchboardError(
                    code: .failedPrecondition,
                    message: "cannot create state directory \(prefix): \(String(cString: strerror(errno)))"
                )
            }
            prefix += "/"
        }
    }
}
