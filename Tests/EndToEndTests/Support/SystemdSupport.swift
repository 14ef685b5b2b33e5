import Foundation
import Glibc
import Synchronization

/// The `serve` flags the systemd tests run with, and that `ExecStart=` of the
/// units in systemd/ must use (SystemdTests checks both sides).
enum SystemdServeFlags {
    /// Flag names of the units' `ExecStart=` line.
    static let names: Set<String> = ["--listen-fd-name", "--exit-idle-after", "--drain-grace"]
    /// Flags the tests add that the units replace with a directive: the state
    /// directory comes from `StateDirectory=switchboard` ($STATE_DIRECTORY, the
    /// server's default) in the units, from a per-test temp directory here.
    static let testOnlyNames: Set<String> = ["--state-dir"]

    static func serve(exitIdleAfter: String, drainGrace: String, stateDir: String) -> [String] {
        ["serve", "--listen-fd-name", "switchboard", "--exit-idle-after", exitIdleAfter, "--drain-grace", drainGrace,
         "--state-dir", stateDir]
    }

    /// Path of a file of the repository (the test file's own location is known).
    static func repositoryFile(_ relative: String) -> String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // Support/ EndToEndTests/ Tests/
        return url.appendingPathComponent(relative).path
    }

    /// The words of a unit file's `ExecStart=` (no quoting is used in our units).
    static func execStart(ofUnit path: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("ExecStart=") }
        guard lines.count == 1, let line = lines.first else {
            throw E2EError("\(path): expected exactly one ExecStart= line, found \(lines.count)")
        }
        return line.dropFirst("ExecStart=".count).split(separator: " ").map(String.init)
    }
}

/// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`: collects every
/// message the server sends.
final class NotifySocket: Sendable {
    let path: String
    private let fd: Int32
    private let received = Mutex<[String]>([])

    init(path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw E2EError("socket(AF_UNIX, SOCK_DGRAM) failed: errno \(errno)") }
        guard bindUnix(fd, path) == 0 else {
            let error = errno
            close(fd)
            throw E2EError("bind \(path) failed: errno \(error)")
        }
        self.fd = fd
        self.path = path
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Every datagram received so far, oldest first.
    func messages() -> [String] {
        received.withLock { messages in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                guard count > 0 else { break }
                messages.append(String(decoding: buffer[0..<count], as: UTF8.self))
            }
            return messages
        }
    }

    /// The `KEY=value` lines of every message so far.
    func lines() -> [String] {
        messages().flatMap { $0.split(separator: "\n").map(String.init) }
    }

    func waitFor(_ line: String, timeout: Duration = .seconds(15)) async -> Bool {
        await eventually(timeout: timeout, interval: .milliseconds(10)) { self.lines().contains(line) }
    }
}

/// Binds `fd` to the Unix socket path `path`.
func bindUnix(_ fd: Int32, _ path: String) -> Int32 {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
}

/// Any program (not only `switchboard`) started with `posix_spawn`, optionally
/// with a descriptor of ours as its fd 3 (what systemd does for socket activation).
/// Output goes to `logPath`. SIGKILLed and reaped when dropped while running.
final class SpawnedProcess: Sendable {
    let pid: pid_t
    let logPath: String
    private let ended = Mutex<Termination?>(nil)

    init(_ arguments: [String], environment: [String: String] = [:], descriptorAs3: Int32? = nil, logPath: String) throws {
        var env = ProcessInfo.processInfo.environment.filter { key, _ in
            !key.hasPrefix("SWITCHBOARD_") && !key.hasPrefix("LISTEN_") && !key.hasPrefix("WATCHDOG_") && key != "NOTIFY_SOCKET"
        }
        env.merge(environment) { _, new in new }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        if let descriptorAs3 {
            // glibc clears FD_CLOEXEC when the descriptor already is 3.
            posix_spawn_file_actions_adddup2(&actions, descriptorAs3, 3)
        }
        // Like systemd: nothing else of ours (other tests' client sockets, which a
        // server would keep open) reaches the child.
        // (glibc ≥ 2.34; not imported into Swift, hence dlsym.)
        guard let closeFrom = Self.addCloseFrom else {
            throw E2EError("posix_spawn_file_actions_addclosefrom_np is missing (glibc 2.34 or later is needed)")
        }
        _ = closeFrom(&actions, descriptorAs3 == nil ? 3 : 4)
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
        guard result == 0 else { throw E2EError("posix_spawn \(arguments[0]) failed: errno \(result)") }
        self.pid = pid
        self.logPath = logPath
    }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let addCloseFrom: AddCloseFrom? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    deinit {
        if termination == nil {
            Glibc.kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    /// How it ended; nil while it runs. Reaps it.
    var termination: Termination? {
        ended.withLock { ended in
            if let ended { return ended }
            var status: Int32 = 0
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid {
                let signal = status & 0x7f
                ended = signal == 0 ? .exited((status >> 8) & 0xff) : Termination(status: signal, signaled: true)
            } else if reaped < 0, errno == ECHILD {
                ended = Termination(status: -1, signaled: false)  // reaped elsewhere: unknown
            }
            return ended
        }
    }

    var isRunning: Bool { termination == nil }

    func signal(_ signal: Int32) {
        if isRunning { Glibc.kill(pid, signal) }
    }

    func wait(timeout: Duration) async -> Termination? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let done = termination { return done }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    var log: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }
}
