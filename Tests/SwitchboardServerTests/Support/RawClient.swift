#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwitchboardProtocol

struct RawClientError: Error, CustomStringConvertible {
    var description: String
}

/// A deliberately dumb protocol client on a raw non-blocking Unix socket, so
/// tests can send anything (garbage, huge prefixes, half frames) and never block
/// a thread of the cooperative pool: waiting is a short `Task.sleep` poll with a
/// deadline, so nothing hangs.
final class RawClient {
    private var fd: Int32
    private var reader = FrameReader(maximumFrameSize: 16 << 20)
    private var peerClosed = false
    private var nextCallID: UInt64 = 1
    /// Frames read while looking for another call's frames.
    private var stash: [Frame] = []

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RawClientError(description: "socket: \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let error = errno
            // `deinit` runs even though this initializer throws (every stored
            // property is set): close once, here, and leave it nothing to close.
            // A second close could hit a descriptor another thread was just given.
            close()
            throw RawClientError(description: "connect \(path): \(String(cString: strerror(error)))")
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    deinit { close() }

    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Allocates the next call id (1, 2, 3, ...).
    func newCallID() -> UInt64 {
        defer { nextCallID += 1 }
        return nextCallID
    }

    // MARK: Sending

    func sendRaw(_ bytes: [UInt8], timeout: Duration = TestTimeScale.seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent > 0 {
                offset += sent
                continue
            }
            let error = errno
            guard error == EAGAIN || error == EWOULDBLOCK || error == EINTR else {
                throw RawClientError(description: "send: \(String(cString: strerror(error)))")
            }
            guard ContinuousClock.now < deadline else { throw RawClientError(description: "send timed out") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    func send(_ frame: Frame) async throws {
        if case .start = frame.kind, frame.callID >= nextCallID {
            nextCallID = frame.callID + 1
        }
        try await sendRaw(frame.prefixedBytes())
    }

    // MARK: Receiving

    /// The next frame, or nil once the server closed the connection.
    func nextFrame(timeout: Duration = TestTimeScale.seconds(10)) async throws -> Frame? {
        if !stash.isEmpty { return stash.removeFirst() }
        return try await readFrame(timeout: timeout)
    }

    private func readFrame(timeout: Duration) async throws -> Frame? {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let frame = try reader.next() { return frame }
            if peerClosed { return nil }
            let count = buffer.withUnsafeMutableBytes { raw in
                recv(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT))
            }
            if count > 0 {
                reader.append(buffer[0..<count])
                continue
            }
            if count == 0 {
                peerClosed = true
                continue
            }
            let error = errno
            switch error {
            case EAGAIN, EWOULDBLOCK, EINTR:
                guard ContinuousClock.now < deadline else {
                    throw RawClientError(description: "no frame within \(timeout)")
                }
                try await Task.sleep(for: .milliseconds(1))
            case ECONNRESET:
                peerClosed = true
            default:
                throw RawClientError(description: "recv: \(String(cString: strerror(error)))")
            }
        }
    }

    /// The next frame, failing on EOF.
    func expectFrame(timeout: Duration = TestTimeScale.seconds(10)) async throws -> Frame {
        guard let frame = try await nextFrame(timeout: timeout) else {
            throw RawClientError(description: "connection closed while a frame was expected")
        }
        return frame
    }

    /// The next frame of call `callID`; frames of other calls are kept for later.
    func expectFrame(forCall callID: UInt64, timeout: Duration = TestTimeScale.seconds(10)) async throws -> Frame {
        if let index = stash.firstIndex(where: { $0.callID == callID }) {
            return stash.remove(at: index)
        }
        while true {
            guard let frame = try await readFrame(timeout: timeout) else {
                throw RawClientError(description: "connection closed while a frame of call \(callID) was expected")
            }
            if frame.callID == callID { return frame }
            stash.append(frame)
        }
    }

    /// Reads until the server closes the connection; returns what came before.
    func readUntilClosed(timeout: Duration = TestTimeScale.seconds(10)) async throws -> [Frame] {
        var frames = stash
        stash = []
        while let frame = try await readFrame(timeout: timeout) {
            frames.append(frame)
        }
        return frames
    }

    /// Whether the server has closed the connection (waits up to `timeout`).
    func isClosedByServer(timeout: Duration = TestTimeScale.seconds(10)) async throws -> Bool {
        let frames = try await readUntilClosed(timeout: timeout)
        return frames.isEmpty
    }

    // MARK: Protocol helpers

    @discardableResult
    func handshake(name: String = "raw-test-client") async throws -> Welcome {
        try await send(Frame(kind: .hello(Hello(clientName: name))))
        let frame = try await expectFrame()
        guard case .welcome(let welcome) = frame.kind else {
            throw RawClientError(description: "expected Welcome, got \(frame)")
        }
        return welcome
    }

    /// One unary call in one frame each way.
    func unary(_ method: String, _ payload: Payload?, callID: UInt64? = nil) async throws -> CallEnd {
        let id = callID ?? newCallID()
        try await send(Frame(callID: id, kind: .start(CallStart(method: method, payload: payload, halfClose: true))))
        return try await expectEnd(of: id)
    }

    func expectEnd(of callID: UInt64, timeout: Duration = TestTimeScale.seconds(10)) async throws -> CallEnd {
        let frame = try await expectFrame(forCall: callID, timeout: timeout)
        guard case .end(let end) = frame.kind else {
            throw RawClientError(description: "expected CallEnd for call \(callID), got \(frame)")
        }
        return end
    }

    func serverStatus() async throws -> ServerStatus {
        let end = try await unary(MethodName.getServerStatus, .serverStatusRequest(ServerStatusRequest()))
        guard end.code == .ok, case .serverStatus(let status)? = end.payload else {
            throw RawClientError(description: "status call failed: \(end)")
        }
        return status
    }

    @discardableResult
    func createSession(_ id: String) async throws -> Session {
        let end = try await unary(MethodName.createSession, .createSessionRequest(CreateSessionRequest(sessionID: id)))
        guard end.code == .ok, case .session(let session)? = end.payload else {
            throw RawClientError(description: "create session failed: \(end)")
        }
        return session
    }

    func sessionStatus(_ id: String) async throws -> SessionStatus {
        let end = try await unary(MethodName.getSessionStatus, .sessionStatusRequest(SessionStatusRequest(sessionID: id)))
        guard end.code == .ok, case .sessionStatus(let status)? = end.payload else {
            throw RawClientError(description: "session status failed: \(end)")
        }
        return status
    }

    /// Starts a prompt call; returns its call id.
    func startPrompt(
        session: String,
        prompt: String,
        timeoutMs: UInt64 = 0,
        whenBusy: BusyPolicy = .wait,
        cancelOnDisconnect: Bool = false
    ) async throws -> UInt64 {
        let id = newCallID()
        try await send(Frame(callID: id, kind: .start(CallStart(
            method: MethodName.prompt,
            timeoutMs: timeoutMs,
            payload: .promptRequest(PromptRequest(
                sessionID: session,
                prompt: prompt,
                whenBusy: whenBusy,
                cancelOnDisconnect: cancelOnDisconnect
            )),
            halfClose: true
        ))))
        return id
    }

    /// Starts an attach call; returns its call id (read it like a prompt call).
    func startAttach(session: String, turn: String = "", afterSequence: UInt64 = 0, timeoutMs: UInt64 = 0) async throws -> UInt64 {
        let id = newCallID()
        try await send(Frame(callID: id, kind: .start(CallStart(
            method: MethodName.attach,
            timeoutMs: timeoutMs,
            payload: .attachRequest(AttachRequest(sessionID: session, turnID: turn, afterSequence: afterSequence)),
            halfClose: true
        ))))
        return id
    }

    func listTurns(_ request: ListTurnsRequest) async throws -> ListTurnsResponse {
        let end = try await unary(MethodName.listTurns, .listTurnsRequest(request))
        guard end.code == .ok, case .listTurnsResponse(let response)? = end.payload else {
            throw RawClientError(description: "list turns failed: \(end)")
        }
        return response
    }

    /// The next event of prompt call `callID`, or its end.
    func nextPromptItem(_ callID: UInt64, timeout: Duration = TestTimeScale.seconds(10)) async throws -> PromptItem {
        let frame = try await expectFrame(forCall: callID, timeout: timeout)
        switch frame.kind {
        case .message(let message):
            guard case .promptEvent(let event)? = message.payload else {
                throw RawClientError(description: "expected a prompt event, got \(frame)")
            }
            return .event(event)
        case .end(let end):
            return .end(end)
        default:
            throw RawClientError(description: "unexpected frame on a prompt call: \(frame)")
        }
    }

    /// Reads a prompt call to its end.
    func collectPrompt(_ callID: UInt64, timeout: Duration = TestTimeScale.seconds(10)) async throws -> PromptResult {
        var result = PromptResult()
        while true {
            switch try await nextPromptItem(callID, timeout: timeout) {
            case .event(let event):
                result.events.append(event)
            case .end(let end):
                result.end = end
                return result
            }
        }
    }
}

enum PromptItem {
    case event(PromptEvent)
    case end(CallEnd)
}

struct PromptResult {
    var events: [PromptEvent] = []
    var end: CallEnd?

    var chunks: [OutputChunk] {
        events.compactMap { if case .output(let chunk) = $0 { chunk } else { nil } }
    }

    var text: String {
        String(decoding: chunks.flatMap(\.data), as: UTF8.self)
    }

    var finished: TurnFinished? {
        events.lazy.compactMap { if case .finished(let finished) = $0 { finished } else { nil } }.first
    }

    /// Accepted, started, output 1...n, finished, in that order.
    var isWellFormed: Bool {
        guard case .accepted? = events.first, case .finished? = events.last else { return false }
        guard events.count >= 3, case .started = events[1] else { return false }
        return chunks.map(\.sequence) == (0..<UInt64(chunks.count)).map { $0 + 1 }
            && events.count == chunks.count + 3
    }
}
