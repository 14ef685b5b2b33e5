#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwitchboardProtocol

/// systemd's socket-activation protocol (`sd_listen_fds(3)`), without libsystemd:
/// descriptors start at 3, `LISTEN_FDS` counts them, `LISTEN_PID` names the process
/// they are meant for and `LISTEN_FDNAMES` (colon-separated) names them.
enum SocketActivation {
    static let firstDescriptor: Int32 = 3

    enum Outcome: Equatable {
        case notActivated
        /// Adopt `descriptor`; `passed` lists every descriptor that was handed over.
        case adopt(descriptor: Int32, passed: [Int32])
    }

    /// Decides from the variables alone (no descriptor is touched).
    static func parse(environment: [String: String], pid: Int32, wantedName: String) throws(SwitchboardError) -> Outcome {
        let listenPID = environment["LISTEN_PID"]
        let listenFDs = environment["LISTEN_FDS"]
        let listenNames = environment["LISTEN_FDNAMES"]
        guard listenPID != nil || listenFDs != nil || listenNames != nil else { return .notActivated }
        guard let listenPID else {
            throw failure("LISTEN_FDS/LISTEN_FDNAMES are set but LISTEN_PID is not")
        }
        guard let target = Int32(listenPID), target > 0 else {
            throw failure("LISTEN_PID=\(listenPID) is not a process id")
        }
        // Meant for another process (e.g. inherited from a parent): not for us.
        guard target == pid else { return .notActivated }
        guard let listenFDs else {
            throw failure("LISTEN_PID is set but LISTEN_FDS is not")
        }
        guard let count = Int32(listenFDs), count >= 0 else {
            throw failure("LISTEN_FDS=\(listenFDs) is not a number of descriptors")
        }
        guard count > 0 else {
            throw failure("LISTEN_FDS=0: socket activation passed no socket")
        }
        guard count <= 1024 else {
            throw failure("LISTEN_FDS=\(count) is implausibly large")
        }
        let passed = (0..<count).map { firstDescriptor + $0 }
        if let listenNames {
            let names = listenNames.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard names.count == Int(count) else {
                throw failure("LISTEN_FDNAMES names \(names.count) descriptors but LISTEN_FDS=\(count)")
            }
            guard let index = names.firstIndex(of: wantedName) else {
                throw failure(
                    "no passed socket is named \"\(wantedName)\" (LISTEN_FDNAMES=\(listenNames)); "
                        + "set FileDescriptorName=\(wantedName) in the .socket unit or pass --listen-fd-name"
                )
            }
            return .adopt(descriptor: passed[index], passed: passed)
        }
        guard count == 1 else {
            throw failure("LISTEN_FDS=\(count) without LISTEN_FDNAMES: cannot tell which socket to use")
        }
        return .adopt(descriptor: passed[0], passed: passed)
    }

    /// Checks that `fd` is a listening `AF_UNIX` stream socket and returns the
    /// path it is bound to (nil for an abstract or unnamed socket).
    static func checkListeningSocket(_ fd: Int32) throws(SwitchboardError) -> String? {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = errno
            throw failure("passed descriptor \(fd) is not open: \(SocketFile.describe(error))")
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw failure("passed descriptor \(fd) is not a socket")
        }
        guard let type = intOption(fd, SO_TYPE), type == Int32(SOCK_STREAM.rawValue) else {
            throw failure("passed socket \(fd) is not a stream socket")
        }
        guard let listening = intOption(fd, SO_ACCEPTCONN), listening != 0 else {
            throw failure("passed socket \(fd) is not listening")
        }
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let named = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else {
            let error = errno
            throw failure("cannot read the address of passed socket \(fd): \(SocketFile.describe(error))")
        }
        guard address.sun_family == sa_family_t(AF_UNIX) else {
            throw failure("passed socket \(fd) is not a Unix domain socket (family \(address.sun_family))")
        }
        let pathLength = Int(length) - MemoryLayout<sa_family_t>.size
        guard pathLength > 0 else { return nil }
        return withUnsafeBytes(of: address.sun_path) { raw -> String? in
            let bytes = raw.prefix(pathLength)
            guard let first = bytes.first, first != 0 else { return nil }  // abstract
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Half of `WATCHDOG_USEC` when it is set and meant for this process.
    static func watchdogInterval(environment: [String: String], pid: Int32) throws(SwitchboardError) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], !text.isEmpty else { return nil }
        if let owner = environment["WATCHDOG_PID"], !owner.isEmpty {
            guard let target = Int32(owner) else { throw failure("WATCHDOG_PID=\(owner) is not a process id") }
            guard target == pid else { return nil }
        }
        guard let microseconds = UInt64(text), microseconds > 0 else {
            throw failure("WATCHDOG_USEC=\(text) is not a positive number of microseconds")
        }
        return .microseconds(Int64(clamping: microseconds / 2))
    }

    private static func intOption(_ fd: Int32, _ option: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, option, &value, &length) == 0 else { return nil }
        return value
    }

    private static func failure(_ message: String) -> SwitchboardError {
        SwitchboardError(code: .failedPrecondition, message: "socket activation: \(message)")
    }
}
