// Blocking Unix-socket helpers that speak just enough of the protocol (Hello/Welcome,
// one GetServerStatus) without the client library: for the connection-memory and
// startup measurements, where the client's own cost must not be in the figure.

import SwitchboardProtocol

#if canImport(Glibc)
import Glibc
#endif

enum RawConnection {
    static func open(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { close(fd); return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else { close(fd); return nil }
        return fd
    }

    static func send(_ fd: Int32, _ frame: Frame) -> Bool {
        let bytes = frame.prefixedBytes()
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    static func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + offset, count - offset) }
            if n <= 0 { return nil }
            offset += n
        }
        return buffer
    }

    static func receive(_ fd: Int32) -> Frame? {
        guard let prefix = readExactly(fd, 4) else { return nil }
        let length = Int(prefix[0]) << 24 | Int(prefix[1]) << 16 | Int(prefix[2]) << 8 | Int(prefix[3])
        guard length <= 4 << 20, let body = readExactly(fd, length) else { return nil }
        return try? Frame(serializedBytes: body)
    }

    static func handshake(_ fd: Int32) -> Bool {
        guard send(fd, Frame(kind: .hello(Hello(clientName: "switchboard-bench-raw")))) else { return false }
        guard case .welcome? = receive(fd)?.kind else { return false }
        return true
    }

    static func statusCall(_ fd: Int32, callID: UInt64 = 1) -> Bool {
        serverStatus(fd, callID: callID) != nil
    }

    /// The answer of one GetServerStatus call, nil when it failed.
    static func serverStatus(_ fd: Int32, callID: UInt64 = 1) -> ServerStatus? {
        let start = CallStart(
            method: MethodName.getServerStatus,
            payload: .serverStatusRequest(ServerStatusRequest()),
            halfClose: true
        )
        guard send(fd, Frame(callID: callID, kind: .start(start))) else { return nil }
        while let frame = receive(fd) {
            if frame.callID == callID, case .end(let end) = frame.kind {
                guard end.code == .ok, case .serverStatus(let status)? = end.payload else { return nil }
                return status
            }
        }
        return nil
    }
}
