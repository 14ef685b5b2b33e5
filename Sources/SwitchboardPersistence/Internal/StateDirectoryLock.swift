#if canImport(Glibc)
import Glibc
#endif
import SwitchboardProtocol

/// The exclusive claim of one server on a state directory: an `flock` on the
/// `lock` file in it, holding the owner's pid as text.
///
/// `flock` belongs to the open file description, so the kernel releases it when
/// the process dies however it dies (no stale lock after a crash), and a second
/// `open` + `flock` conflicts even inside the same process.
final class StateDirectoryLock: Sendable {
    let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Creates `directory` (0700) when missing, then takes the lock or throws
    /// FAILED_PRECONDITION naming the pid that holds it.
    static func acquire(directory: String) throws(SwitchboardError) -> StateDirectoryLock {
        try createDirectory(directory)
        let path = directory + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw SwitchboardError(
                code: .failedPrecondition,
                message: "cannot open \(path): \(String(cString: strerror(errno)))"
            )
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let error = errno
            let holder = readPID(fd)
            close(fd)
            if error == EWOULDBLOCK {
                let who = holder.map { "pid \($0)" } ?? "pid unknown"
                throw SwitchboardError(
                    code: .failedPrecondition,
                    message: "state directory \(directory) is in use by another switchboard (\(who))"
                )
            }
            throw SwitchboardError(
                code: .failedPrecondition,
                message: "cannot lock \(path): \(String(cString: strerror(error)))"
            )
        }
        // Ours now: record our pid for the next one who finds the lock taken.
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return StateDirectoryLock(path: path, descriptor: fd)
    }

    /// Releases the lock (closing the descriptor drops the `flock`). The file
    /// stays: removing it would race with a server that just opened it.
    func release() {
        close(descriptor)
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

    private static func readPID(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let digits = buffer[..<count].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return Int32(String(decoding: digits, as: UTF8.self))
    }
}
