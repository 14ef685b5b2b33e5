import Foundation
import Glibc
import SwitchboardProtocol

/// A bare Unix-socket connection to the server for feeding it hand-made bytes:
/// blocking Glibc calls with `SO_RCVTIMEO`, replies parsed by `FrameReader`.
/// Use it off the cooperative pool (see ``offPool(_:)``).
final class RawConnection: @unchecked Sendable {
    enum Received: Equatable, CustomStringConvertible {
        case frame(Frame)
        /// The server closed the connection.
        case closed
        /// Nothing arrived in time.
        case timedOut

        var description: String {
            switch self {
            case .frame(let frame): "\(frame)"
            case .closed: "connection closed"
            case .timedOut: "timed out"
            }
        }
    }

    let fd: Int32
    private var reader = FrameReader()

    /// On failure `deinit` still runs (every stored property is set by then) and
    /// closes `fd`: the error paths below must not close it themselves.
    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw E2EError("socket(): errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw E2EError("socket path too long for sun_path: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let error = errno
            throw E2EError("connect(\(path)): errno \(error)")
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// True when a connection to `path` is accepted right now.
    static func canConnect(_ path: String) -> Bool {
        (try? RawConnection(path: path)) != nil
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                throw E2EError("send(): errno \(errno)")
            }
            offset += sent
        }
    }

    func send(_ frame: Frame) throws {
        try send(frame.prefixedBytes())
    }

    /// No more bytes from us (the server sees EOF).
    func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// The next frame from the server, `.closed` at EOF (or a reset), `.timedOut`
    /// when nothing complete arrived within `timeout`.
    func receive(timeout: Duration = .seconds(5)) throws -> Received {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let frame = try reader.next() { return .frame(frame) }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return .timedOut }
            let (seconds, attoseconds) = left.components
            var tv = timeval(tv_sec: Int(seconds), tv_usec: Int(max(attoseconds / 1_000_000_000_000, 1_000)))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                reader.append(buffer[0..<count])
            } else if count == 0 {
                return .closed
            } else if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                continue
            } else if errno == ECONNRESET {
                return .closed
            } else {
                throw E2EError("recv(): errno \(errno)")
            }
        }
    }

    /// Reads frames until the server closes the connection; returns them all.
    /// Throws when the connection is still open after `timeout`.
    func receiveUntilClosed(timeout: Duration = .seconds(5)) throws -> [Frame] {
        let deadline = ContinuousClock.now + timeout
        var frames: [Frame] = []
        while true {
            switch try receive(timeout: deadline - ContinuousClock.now) {
            case .frame(let frame): frames.append(frame)
            case .closed: return frames
            case .timedOut:
                throw E2EError("the server did not close the connection within \(timeout); frames so far: \(frames)")
            }
        }
    }

    /// Hello / Welcome.
    @discardableResult
    func handshake(clientName: String = "e2e-raw") throws -> Welcome {
        try send(Frame(kind: .hello(Hello(clientName: clientName))))
        let reply = try receive()
        guard case .frame(let frame) = reply, case .welcome(let welcome) = frame.kind else {
            throw E2EError("expected Welcome after Hello, got \(reply)")
        }
        return welcome
    }

    /// Sends a unary call (`start` with the payload and half-close) and returns
    /// its `end`, skipping frames of other calls.
    func unary(callID: UInt64, method: String, payload: Payload?) throws -> CallEnd {
        try send(Frame(callID: callID, kind: .start(CallStart(method: method, payload: payload, halfClose: true))))
        while true {
            let reply = try receive()
            switch reply {
            case .frame(let frame) where frame.callID == callID:
                if case .end(let end) = frame.kind { return end }
            case .frame:
                continue
            case .closed, .timedOut:
                throw E2EError("call \(callID) \(method): no end, \(reply)")
            }
        }
    }
}

/// Runs blocking work (raw sockets) on a Dispatch thread, not on the Swift
/// concurrency pool, and awaits its result.
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try work() })
        }
    }
}
