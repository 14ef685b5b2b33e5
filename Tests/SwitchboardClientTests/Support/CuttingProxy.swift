import Foundation
import Glibc
import Synchronization
import SwitchboardProtocol

/// Where the proxy cuts its first connection: after `offsetSelector % size` bytes of
/// the server's frame number `frame` (0 = Welcome; the 4-byte length prefix counts
/// as part of the frame, so offset 0 is the boundary just before it).
struct CutPoint: Sendable, Hashable, CustomStringConvertible {
    var frame: Int
    var offsetSelector: UInt64
    /// Cut as soon as every frame before `frame` has been forwarded, without waiting
    /// for `frame` to arrive (offset 0 only). A plain cut is made when the bytes it
    /// falls in arrive, so the server has already sent what comes next; this one
    /// cuts while the server has nothing more to send (a silent turn).
    var eager = false

    init(frame: Int, offsetSelector: UInt64) {
        self.frame = frame
        self.offsetSelector = offsetSelector
    }

    /// The boundary before `frame`, cut as soon as it is reached (see ``eager``).
    static func before(frame: Int) -> CutPoint {
        var cut = CutPoint(frame: frame, offsetSelector: 0)
        cut.eager = true
        return cut
    }

    var description: String { eager ? "before frame \(frame)" : "frame \(frame), selector \(offsetSelector)" }
}

/// What happened on the proxy's first (cut) connection.
struct CutReport: Sendable {
    /// False when the connection ended before the cut point was reached.
    var cut = false
    /// The exact server → client bytes the client was given.
    var delivered: [UInt8] = []
    /// Size of the frame the cut fell in (prefix included) and the offset in it.
    var frameSize = 0
    var offset = 0
}

/// A Unix-socket proxy for testing what a client does when its connection is cut.
///
/// It accepts client connections and connects each to `target`, forwarding bytes
/// both ways on two blocking threads per connection. On a connection with a
/// ``CutPoint`` (the first one, or the first few with `cuts`) it reads the server →
/// client bytes as frames and, at the cut point, forwards exactly the bytes before
/// it and then shuts both sockets down (the server sees its client vanish, the
/// client sees the connection close mid-stream). Later connections pass through
/// untouched, so a client can reconnect through it.
///
/// Its descriptors are close-on-exec: every test target runs in one process, and
/// other tests spawn children that must not inherit them.
final class CuttingProxy: Sendable {
    let socketPath: String
    private let target: String
    /// The cut point of connection number `index + 1`.
    private let cuts: [CutPoint]
    private let listenFD: Int32
    private let state = Mutex<State>(State())

    private struct State {
        var connections = 0
        var report = CutReport()
        var reportDone = false
    }

    convenience init(target: String, cutFirstConnectionAt cutPoint: CutPoint?) throws {
        try self.init(target: target, cuts: cutPoint.map { [$0] } ?? [])
    }

    /// Cuts connection number `n` at `cuts[n - 1]`; the report is the first one's.
    init(target: String, cuts: [CutPoint]) throws {
        self.target = target
        self.cuts = cuts
        self.socketPath = try makeSocketPath()
        self.listenFD = try Self.listen(at: socketPath)
        let listener = self.listenFD
        Thread.detachNewThread { [self] in
            while true {
                let fd = acceptCloseOnExec(listener)
                if fd < 0 {
                    if errno == EINTR { continue }
                    // `stop()` shut the listener down. Only this thread closes it: had
                    // `stop()` closed it, the number could already belong to another
                    // proxy's socket by the time this loop called accept again.
                    Glibc.close(listener)
                    return
                }
                let index = self.state.withLockAnnotated { state in
                    state.connections += 1
                    return state.connections
                }
                self.serve(client: fd, cut: index <= self.cuts.count ? self.cuts[index - 1] : nil, isFirst: index == 1)
            }
        }
    }

    /// Connections accepted so far.
    var connections: Int { state.withLockAnnotated { $0.connections } }

    /// The first connection's report, once its server → client side has ended.
    func firstConnectionReport() async throws -> CutReport {
        let deadline = ContinuousClock.now + .seconds(10 * TestTimeScale.factor)
        while ContinuousClock.now < deadline {
            if let report = state.withLockAnnotated({ $0.reportDone ? $0.report : nil }) { return report }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw TimedOut(what: "the proxy's first connection never ended")
    }

    /// Stops accepting: wakes the accept thread, which closes the listener.
    func stop() {
        shutdown(listenFD, Int32(SHUT_RDWR))
        removeSocketDirectory(socketPath)
    }

    // MARK: - Forwarding

    private func serve(client: Int32, cut: CutPoint?, isFirst: Bool) {
        let server: Int32
        do {
            server = try Self.connect(to: target)
        } catch {
            Glibc.close(client)
            if isFirst { state.withLockAnnotated { $0.reportDone = true } }
            return
        }
        // Each descriptor is closed once both pumps are done with it (closing under a
        // blocked `read` on another thread could hand the number to a new socket).
        let remaining = PumpCount()
        let finish: @Sendable () -> Void = {
            if remaining.value.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                Glibc.close(client)
                Glibc.close(server)
            }
        }
        Thread.detachNewThread {
            Self.pump(from: client, to: server)
            shutdown(server, Int32(SHUT_WR))
            finish()
        }
        Thread.detachNewThread { [self] in
            var cutter = cut.map { FrameCutter(cut: $0) }
            var delivered: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            reading: while true {
                let count = buffer.withUnsafeMutableBytes { read(server, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                guard cutter != nil else {
                    if isFirst { delivered += buffer[0..<count] }
                    if !Self.writeAll(client, buffer[0..<count]) { break }
                    continue
                }
                let (forward, cutNow) = cutter!.accept(buffer[0..<count])
                delivered += forward
                if !forward.isEmpty, !Self.writeAll(client, forward[...]) { break }
                if cutNow {
                    if isFirst {
                        let report = CutReport(cut: true, delivered: delivered, frameSize: cutter!.cutFrameSize, offset: cutter!.cutOffset)
                        state.withLockAnnotated {
                            $0.report = report
                            $0.reportDone = true
                        }
                    }
                    shutdown(client, Int32(SHUT_RDWR))
                    shutdown(server, Int32(SHUT_RDWR))
                    finish()
                    return
                }
                continue reading
            }
            if isFirst {
                state.withLockAnnotated {
                    $0.report = CutReport(cut: false, delivered: delivered)
                    $0.reportDone = true
                }
            }
            shutdown(client, Int32(SHUT_WR))
            finish()
        }
    }

    private static func pump(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return }
            if !writeAll(destination, buffer[0..<count]) { return }
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    // MARK: - Sockets

    private static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }
        return address
    }

    private static func listen(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FakeServerError("socket: \(errno)") }
        var address = Self.address(path)
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 64) == 0 else {
            Glibc.close(fd)
            throw FakeServerError("bind/listen: \(errno)")
        }
        return fd
    }

    private static func connect(to path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FakeServerError("socket: \(errno)") }
        var address = Self.address(path)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            throw FakeServerError("connect: \(errno)")
        }
        return fd
    }
}

/// The pumps of one proxied connection still running.
private final class PumpCount: Sendable {
    let value = Atomic<Int>(2)
}

/// Follows the server's frames (4-byte big-endian length, then the body) and says how
/// many of the bytes read so far may be forwarded before the cut point.
struct FrameCutter {
    let cut: CutPoint
    /// Every byte read from the server so far.
    private var bytes: [UInt8] = []
    private var forwarded = 0
    /// Start of the next frame whose header has not been read yet, and its index.
    private var nextFrameStart = 0
    private var nextFrameIndex = 0
    private var cutAt: Int?
    private(set) var cutFrameSize = 0
    private(set) var cutOffset = 0

    init(cut: CutPoint) { self.cut = cut }

    /// The bytes of `chunk` to forward, and whether to cut the connection after them.
    mutating func accept(_ chunk: ArraySlice<UInt8>) -> ([UInt8], Bool) {
        bytes += chunk
        while cutAt == nil, nextFrameStart + 4 <= bytes.count {
            let p = nextFrameStart
            let length = Int(bytes[p]) << 24 | Int(bytes[p + 1]) << 16 | Int(bytes[p + 2]) << 8 | Int(bytes[p + 3])
            let size = 4 + length
            if nextFrameIndex == cut.frame {
                cutFrameSize = size
                cutOffset = Int(cut.offsetSelector % UInt64(size))
                cutAt = p + cutOffset
            }
            nextFrameStart += size
            nextFrameIndex += 1
        }
        if cutAt == nil, cut.eager, nextFrameIndex == cut.frame, bytes.count >= nextFrameStart {
            // Every frame before the cut one is here whole: cut now, not when the
            // next frame's bytes come.
            cutFrameSize = 0
            cutOffset = 0
            cutAt = nextFrameStart
        }
        let safe: Int
        if let cutAt {
            safe = min(bytes.count, cutAt)
        } else if nextFrameIndex == cut.frame {
            safe = min(bytes.count, nextFrameStart)  // the cut frame's header is incomplete
        } else {
            safe = bytes.count
        }
        let forward = safe > forwarded ? Array(bytes[forwarded..<safe]) : []
        forwarded = max(forwarded, safe)
        return (forward, cutAt == forwarded)
    }
}

private typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32

/// glibc's `accept4` (the Glibc module leaves it out: it is a GNU extension).
private let accept4Function: Accept4 = {
    guard let symbol = dlsym(nil, "accept4") else { fatalError("accept4 not found") }
    return unsafeBitCast(symbol, to: Accept4.self)
}()

/// Accepts a connection that is close-on-exec from the start, with no window in
/// which a child spawned by another test could inherit it (the test targets share
/// one process).
func acceptCloseOnExec(_ listener: Int32) -> Int32 {
    accept4Function(listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
}
