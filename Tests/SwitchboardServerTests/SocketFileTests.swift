#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer
import Testing

@Suite("Socket file")
struct SocketFileTests {
    static func mode(of path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode
    }

    @Test func defaultModeAndParentDirectory() async throws {
        let dir = makeSocketDirectory()
        defer {
            rmdir(dir + "/nested")
            removeDirectory(dir)
        }
        let path = dir + "/nested/s.sock"
        var configuration = ServerConfiguration(socketPath: path)
        configuration.drainGracePeriod = .seconds(1)
        let server = SwitchboardServer(configuration: configuration, registry: makeRegistry(), logger: quietLogger)
        let run = Task { try await server.run() }
        try await server.waitUntilListening()
        let mode = try #require(Self.mode(of: path))
        #expect(mode & S_IFMT == S_IFSOCK)
        #expect(mode & 0o7777 == 0o660)
        #expect(Self.mode(of: dir + "/nested").map { $0 & 0o777 } == 0o755)
        server.beginDrain()
        try await run.value
        #expect(Self.mode(of: path) == nil)
    }

    /// A socket file left by a dead server: bound, never listened on or closed.
    static func makeStaleSocket(at path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        close(fd)
        try #require(result == 0)
    }

    @Test func staleSocketIsReplaced() async throws {
        let dir = makeSocketDirectory()
        defer { removeDirectory(dir) }
        let path = dir + "/s.sock"
        try Self.makeStaleSocket(at: path)
        #expect(Self.mode(of: path).map { $0 & S_IFMT } == S_IFSOCK)
        var configuration = ServerConfiguration(socketPath: path)
        configuration.drainGracePeriod = .seconds(1)
        let server = SwitchboardServer(configuration: configuration, registry: makeRegistry(), logger: quietLogger)
        let run = Task { try await server.run() }
        try await server.waitUntilListening()
        let client = try RawClient(path: path)
        try await client.handshake()
        server.beginDrain()
        try await run.value
    }

    @Test func liveServerIsNotStolen() async throws {
        try await withTestServer { first in
            let second = SwitchboardServer(
                configuration: ServerConfiguration(socketPath: first.path),
                registry: makeRegistry(),
                logger: quietLogger
            )
            let error = await #expect(throws: SwitchboardError.self) { try await second.run() }
            #expect(error?.message == "another server is already listening on \(first.path)")
            await #expect(throws: SwitchboardError.self) { try await second.waitUntilListening() }
            // The first server is still reachable on its own socket.
            let client = try await first.connectAndHandshake()
            _ = try await client.serverStatus()
        }
    }

    @Test func aSocketFileThatIsNoLongerOursIsLeftAlone() async throws {
        let dir = makeSocketDirectory()
        defer { removeDirectory(dir) }
        let path = dir + "/s.sock"
        var configuration = ServerConfiguration(socketPath: path)
        configuration.drainGracePeriod = .seconds(1)
        let server = SwitchboardServer(configuration: configuration, registry: makeRegistry(), logger: quietLogger)
        let run = Task { try await server.run() }
        try await server.waitUntilListening()
        // Someone else replaced the path (say, a newer server): not ours to remove.
        // (The identity is device + inode + change time; a file recreated within
        // the same coarse kernel clock tick on a reused inode would look the same,
        // hence the pause.)
        try await Task.sleep(for: .milliseconds(30))
        unlink(path)
        try Self.makeStaleSocket(at: path)
        server.beginDrain()
        try await run.value
        #expect(Self.mode(of: path).map { $0 & S_IFMT } == S_IFSOCK)
    }

    @Test func regularFileIsRefused() async throws {
        let dir = makeSocketDirectory()
        defer { removeDirectory(dir) }
        let path = dir + "/s.sock"
        let fd = open(path, O_CREAT | O_WRONLY, 0o644)
        _ = write(fd, "keep me", 7)
        close(fd)
        let server = SwitchboardServer(configuration: ServerConfiguration(socketPath: path), registry: makeRegistry(), logger: quietLogger)
        let error = await #expect(throws: SwitchboardError.self) { try await server.run() }
        #expect(error?.message == "\(path) exists and is not a socket; refusing to replace it")
        var info = stat()
        #expect(lstat(path, &info) == 0 && info.st_size == 7)
    }
}
