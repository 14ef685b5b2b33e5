#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwitchboardProtocol

/// The socket file on disk: made safe to bind before, and removed only if it is
/// still ours after.
///
/// A server must never steal a live server's socket (unlinking it would leave
/// that server running but unreachable), but a file left behind by a crashed
/// server must not block a restart either. `connect()` tells them apart.
enum SocketFile {
    /// Device, inode and change time of the file we bound, so that cleanup never
    /// removes a socket that a newer server has bound at the same path since (an
    /// unlinked inode number is often reused at once; the change time tells the
    /// two files apart).
    struct Identity: Sendable, Equatable {
        var device: UInt64
        var inode: UInt64
        var changeSeconds: Int
        var changeNanoseconds: Int
    }

    /// What is at the socket path now, as far as binding is concerned.
    enum Occupant: Sendable, Equatable {
        /// Nothing, or a path whose parent directory does not exist yet.
        case nothing
        /// A socket file nobody listens on (left by a dead server).
        case staleSocket
    }

    /// Checks `path` without changing anything on disk: a usable length, not a
    /// live server's socket, not a file of another kind. The start of `serve`
    /// calls it (through ``SwitchboardServer/checkSocketPath(_:)``) before it
    /// creates a state directory, so a refused start leaves nothing behind.
    static func check(path: String) throws(SwitchboardError) -> Occupant {
        guard !path.isEmpty else {
            throw SwitchboardError(code: .invalidArgument, message: "the socket path is empty")
        }
        // sun_path holds 108 bytes including the terminating NUL.
        guard path.utf8.count < 108 else {
            throw SwitchboardError(
                code: .invalidArgument,
                message: "socket path \(path) is \(path.utf8.count) bytes; Unix sockets allow at most 107"
            )
        }
        var info = stat()
        if lstat(path, &info) != 0 {
            let error = errno
            if error == ENOENT { return .nothing }
            throw SwitchboardError(code: .failedPrecondition, message: "cannot inspect \(path): \(describe(error))")
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw SwitchboardError(
                code: .failedPrecondition,
                message: "\(path) exists and is not a socket; refusing to replace it"
            )
        }
        switch probe(path: path) {
        case .live:
            throw SwitchboardError(code: .alreadyExists, message: "another server is already listening on \(path)")
        case .stale:
            return .staleSocket
        case .gone:
            return .nothing
        case .unknown(let error):
            throw SwitchboardError(
                code: .failedPrecondition,
                message: "cannot tell whether a server is listening on \(path): \(describe(error))"
            )
        }
    }

    /// Creates the parent directory (0755) if missing; replaces a stale socket
    /// file; refuses a live server's socket or anything that is not a socket.
    static func prepare(path: String) throws(SwitchboardError) {
        // Checked before the parent directory is made, so a refusal creates nothing.
        _ = try check(path: path)
        try createParentDirectory(of: path)
        // Again now: another server may have come or gone in between.
        guard try check(path: path) == .staleSocket else { return }
        if unlink(path) != 0, errno != ENOENT {
            let error = errno
            throw SwitchboardError(
                code: .failedPrecondition,
                message: "cannot remove stale socket \(path): \(describe(error))"
            )
        }
    }

    /// Creates the listening socket at `path` (after ``prepare(path:)``).
    ///
    /// Bound here rather than by NIO: a NIO server channel that bound a path
    /// unlinks whatever socket is at that path when it closes, which would remove
    /// a newer server's socket. An adopted descriptor is left alone, so cleanup
    /// stays ours and identity-checked.
    static func bindListeningSocket(path: String, backlog: Int32) throws(SwitchboardError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            let error = errno
            throw SwitchboardError(code: .unavailable, message: "cannot create a socket: \(describe(error))")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
        }
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if bound != 0 {
            let error = errno
            close(fd)
            if error == EADDRINUSE {
                throw SwitchboardError(code: .alreadyExists, message: "another server is already listening on \(path)")
            }
            throw SwitchboardError(code: .unavailable, message: "cannot bind \(path): \(describe(error))")
        }
        if listen(fd, backlog) != 0 {
            let error = errno
            close(fd)
            unlink(path)
            throw SwitchboardError(code: .unavailable, message: "cannot listen on \(path): \(describe(error))")
        }
        return fd
    }

    /// Applies the configured permission bits to the freshly bound socket.
    static func setMode(path: String, mode: UInt32) throws(SwitchboardError) {
        if chmod(path, mode_t(mode)) != 0 {
            let error = errno
            throw SwitchboardError(code: .failedPrecondition, message: "cannot chmod \(path): \(describe(error))")
        }
    }

    static func identity(path: String) -> Identity? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else { return nil }
        return Identity(
            device: UInt64(info.st_dev),
            inode: UInt64(info.st_ino),
            changeSeconds: Int(info.st_ctim.tv_sec),
            changeNanoseconds: Int(info.st_ctim.tv_nsec)
        )
    }

    /// Removes the socket file if it is still the one we bound.
    @discardableResult
    static func remove(path: String, ifIdentityIs expected: Identity) -> Bool {
        guard identity(path: path) == expected else { return false }
        return unlink(path) == 0
    }

    // MARK: Helpers

    private enum ProbeResult {
        case live, stale, gone
        case unknown(Int32)
    }

    /// Connects to the existing socket: accepted (or backlog full) means a live
    /// server; refused means nobody listens any more.
    private static func probe(path: String) -> ProbeResult {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .unknown(errno) }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
        }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result == 0 { return .live }
        switch errno {
        case ECONNREFUSED: return .stale
        case EAGAIN: return .live
        case ENOENT: return .gone
        case let error: return .unknown(error)
        }
    }

    private static func createParentDirectory(of path: String) throws(SwitchboardError) {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return }
        let parent = String(path[..<slash])
        guard !parent.isEmpty else { return }
        var prefix = parent.hasPrefix("/") ? "" : "."
        for component in parent.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            if mkdir(prefix, 0o755) != 0 {
                let error = errno
                guard error == EEXIST else {
                    throw SwitchboardError(
                        code: .failedPrecondition,
                        message: "cannot create directory \(prefix) for the socket: \(describe(error))"
                    )
                }
            }
        }
    }

    static func describe(_ error: Int32) -> String {
        String(cString: strerror(error))
    }
}
