#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// `sd_notify(3)` without libsystemd: one datagram per state change to the
/// `AF_UNIX` `SOCK_DGRAM` socket named by `$NOTIFY_SOCKET` (a path, or `@name`
/// for an abstract address). Sending never blocks and never fails the server: a
/// lost notification is logged at debug level.
final class SystemdNotifier: Sendable {
    private let fd: Int32
    private let address: sockaddr_un
    private let addressLength: socklen_t
    private let target: String
    private let logger: Logger

    /// nil (with a warning) when the address is unusable.
    init?(socket target: String, logger: Logger) {
        let bytes = Array(target.utf8)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? 2
        guard let first = bytes.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "@") else {
            logger.warning("NOTIFY_SOCKET=\(target) is neither a path nor an abstract @address; not notifying")
            return nil
        }
        guard bytes.count < capacity else {
            logger.warning("NOTIFY_SOCKET=\(target) is too long; not notifying")
            return nil
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            if first == UInt8(ascii: "@") { raw[0] = 0 }  // abstract namespace
        }
        // An abstract address is exactly its bytes long; a path includes its NUL.
        let length = pathOffset + bytes.count + (first == UInt8(ascii: "@") ? 0 : 1)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else {
            logger.warning("cannot create the notification socket: \(SocketFile.describe(errno))")
            return nil
        }
        self.fd = fd
        self.address = address
        self.addressLength = socklen_t(length)
        self.target = target
        self.logger = logger
    }

    deinit {
        close(fd)
    }

    /// Sends `KEY=value` lines as one datagram.
    func send(_ lines: [String]) {
        let message = lines.joined(separator: "\n") + "\n"
        var address = self.address
        let sent = message.utf8CString.withUnsafeBufferPointer { buffer in
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count - 1, Int32(MSG_NOSIGNAL), $0, addressLength)
                }
            }
        }
        if sent < 0 {
            logger.debug("sd_notify to \(target) failed: \(SocketFile.describe(errno))", metadata: ["message": "\(lines.first ?? "")"])
        }
    }

    func ready(status: String) {
        send(["READY=1", "MAINPID=\(getpid())", "STATUS=\(status)"])
    }

    func status(_ status: String) {
        send(["STATUS=\(status)"])
    }

    func stopping(status: String) {
        send(["STOPPING=1", "STATUS=\(status)"])
    }

    func watchdog() {
        send(["WATCHDOG=1"])
    }
}
