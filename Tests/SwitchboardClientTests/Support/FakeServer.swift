import Foundation
import Glibc
import Synchronization
import SwitchboardProtocol

/// A scripted peer on a real Unix socket, for what a well-behaved server never does on
/// cue: refusing the handshake, going away between two calls, vanishing mid-call,
/// never answering. It accepts connections and runs `script` on its own thread
/// with blocking I/O; every frame the client sent is recorded for assertions.
final class FakeServer: Sendable {
    let socketPath: String
    let received = Mutex<[Frame]>([])
    /// Set once the script has returned and the connection is closed.
    private let scriptEnded = Mutex<Bool>(false)
    private let listenFD: Int32
    /// Who closes the listener: the accept thread once it is done, so a number
    /// closed under it can never be reused by another test's socket while it
    /// still calls `accept` (`closeListener` only shuts it down meanwhile).
    private let listener = Mutex<(threadDone: Bool, closeRequested: Bool, closed: Bool)>((false, false, false))

    convenience init(_ script: @escaping @Sendable (FakeConnection) throws -> Void) throws {
        try self.init(connections: 1) { _, connection in try script(connection) }
    }

    /// Accepts `connections` connections one after the other, running `script` with
    /// each one's number (1-based) to its end before accepting the next: a client
    /// that reconnects meets a scripted server again.
    init(connections: Int, _ script: @escaping @Sendable (Int, FakeConnection) throws -> Void) throws {
        socketPath = try makeSocketPath()
        listenFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listenFD >= 0 else { throw FakeServerError("socket: \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: pathBytes)
        }
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listenFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, listen(listenFD, 8) == 0 else { throw FakeServerError("bind/listen: \(errno)") }
        let listening = self.listenFD
        Thread.detachNewThread { [self] in
            defer { acceptThreadDone() }
            for index in 1...max(connections, 1) {
                let fd = acceptCloseOnExec(listening)
                guard fd >= 0 else { return }
                let connection = FakeConnection(fd: fd, server: self)
                try? script(index, connection)
                connection.close()
            }
            scriptEnded.withLockAnnotated { $0 = true }
        }
    }

    /// Waits until the script has returned and closed the connection. A test that
    /// checks `receivedFrames` after its client closed must wait for this first: the
    /// script's thread may not have read the client's last frames yet (under Thread
    /// Sanitizer it often has not). Throws if the script is still running after
    /// `limit`.
    func waitUntilScriptEnded(_ limit: Duration = TestTimeScale.seconds(10)) async throws {
        let deadline = ContinuousClock.now + limit
        while !scriptEnded.withLockAnnotated({ $0 }) {
            guard ContinuousClock.now < deadline else {
                throw FakeServerError("the fake server's script did not end within \(limit)")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Stops listening and removes the socket's directory.
    func stop() {
        closeListener()
        removeSocketDirectory(socketPath)
    }

    /// Stops listening but leaves the socket file: a stale socket (ECONNREFUSED).
    func closeListener() {
        shutdown(listenFD, Int32(SHUT_RDWR))
        let closeNow = listener.withLockAnnotated { state -> Bool in
            state.closeRequested = true
            guard state.threadDone, !state.closed else { return false }
            state.closed = true
            return true
        }
        if closeNow { Glibc.close(listenFD) }
    }

    private func acceptThreadDone() {
        let closeNow = listener.withLockAnnotated { state -> Bool in
            state.threadDone = true
            guard state.closeRequested, !state.closed else { return false }
            state.closed = true
            return true
        }
        if closeNow { Glibc.close(listenFD) }
    }

    var receivedFrames: [Frame] { received.withLockAnnotated { $0 } }

    func record(_ frame: Frame) {
        received.withLockAnnotated { $0.append(frame) }
    }
}

struct FakeServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The fake server's end of the one connection; used only on the script's thread.
final class FakeConnection {
    private let fd: Int32
    private let server: FakeServer
    private var reader = FrameReader()
    private var closed = false

    init(fd: Int32, server: FakeServer) {
        self.fd = fd
        self.server = server
    }

    /// The next frame from the client; throws at end of stream.
    func receive() throws -> Frame {
        while true {
            if let frame = try reader.next() {
                server.record(frame)
                return frame
            }
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw FakeServerError("end of stream") }
            reader.append(buffer[0..<count])
        }
    }

    /// Frames until (and including) the first one `matching`.
    @discardableResult
    func receive(until matching: (Frame) -> Bool) throws -> Frame {
        while true {
            let frame = try receive()
            if matching(frame) { return frame }
        }
    }

    /// Reads and records frames until the client closes the connection.
    func drainUntilClosed() {
        while (try? receive()) != nil {}
    }

    func send(_ frame: Frame) {
        let bytes = frame.prefixedBytes()
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }

    /// Answers the client's Hello with a Welcome.
    func acceptHandshake() throws {
        let hello = try receive()
        guard case .hello = hello.kind else { throw FakeServerError("expected Hello, got \(hello.kind)") }
        send(Frame(kind: .welcome(Welcome(
            version: 1,
            serverName: "fake",
            serverVersion: "0",
            maxFrameSize: ProtocolVersion.defaultMaxFrameSize,
            maxConcurrentCalls: 100,
            connectionID: 42,
            maxQueuedPrompts: 16
        ))))
    }

    /// Shut down first: a child process that inherited the descriptor cannot keep
    /// the connection open for the client.
    func close() {
        guard !closed else { return }
        closed = true
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }
}

extension Frame {
    var isStart: Bool {
        if case .start = kind { return true }
        return false
    }

    var isCancel: Bool {
        if case .cancel = kind { return true }
        return false
    }
}
