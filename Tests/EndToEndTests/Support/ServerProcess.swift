import Foundation
import Glibc
import Synchronization

/// A `switchboard serve` process on its own socket in its own temp directory.
final class ServerProcess: Sendable {
    let directory: TempDirectory
    let socketPath: String
    let child: ChildProcess

    var pid: Int32 { child.pid }
    /// Everything the server logged so far (its stderr).
    var log: String { child.stderr }

    private init(directory: TempDirectory, socketPath: String, child: ChildProcess) {
        self.directory = directory
        self.socketPath = socketPath
        self.child = child
    }

    /// The server's own state directory (unless the test passed `--state-dir`).
    var stateDirectory: String { directory.path + "/state" }

    /// Starts `switchboard serve --socket <tmp> <arguments>` and waits until the
    /// socket accepts a connection. Every server gets `--state-dir <tmp>/state`
    /// unless `arguments` choose one, so parallel tests never share a directory;
    /// pass the `directory` of a previous server to restart on its socket and
    /// state directory.
    static func start(_ arguments: [String], in existing: TempDirectory? = nil, timeout: Duration = .seconds(20)) async throws -> ServerProcess {
        let directory = try existing ?? TempDirectory()
        let socketPath = directory.path + "/sock"
        let state = arguments.contains("--state-dir") ? [] : ["--state-dir", directory.path + "/state"]
        let child = try ChildProcess(
            arguments: ["serve", "--socket", socketPath] + state + arguments,
            directory: directory
        )
        let server = ServerProcess(directory: directory, socketPath: socketPath, child: child)
        let deadline = ContinuousClock.now + timeout
        while !RawConnection.canConnect(socketPath) {
            if !child.isRunning {
                throw E2EError("`switchboard serve \(arguments.joined(separator: " "))` exited before accepting: \(child.termination?.termination.description ?? "?")\n\(server.log)")
            }
            if ContinuousClock.now >= deadline {
                server.kill()
                throw E2EError("`switchboard serve` did not accept on \(socketPath) within \(timeout)\n\(server.log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return server
    }

    /// SIGTERM, then waits for the exit; nil when it had to be SIGKILLed after `timeout`.
    func stop(timeout: Duration = .seconds(15)) async -> Termination? {
        child.kill(signal: SIGTERM)
        if let done = await child.wait(timeout: timeout) { return done }
        kill()
        return nil
    }

    /// SIGKILL if still running (no wait).
    func kill() {
        child.kill(signal: SIGKILL)
    }

    var isRunning: Bool { child.isRunning }

    /// Runs a CLI command against this server (`SWITCHBOARD_SOCKET`), to its end.
    func cli(_ arguments: [String], stdin: String? = nil, timeout: Duration = .seconds(15)) async throws -> CLIResult {
        try await runCLI(arguments, socket: socketPath, stdin: stdin, timeout: timeout, directory: directory)
    }

    /// Starts a CLI command against this server without waiting for it.
    func startCLI(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess {
        try EndToEndTests.startCLI(arguments, socket: socketPath, stdin: stdin, directory: directory)
    }

    /// The server's resident set size in KiB (`VmRSS` of /proc/PID/status).
    func residentKiB() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }
}

/// Starts a server, runs `body` with it and always kills the server afterwards.
/// The temp directory (socket, server log, CLI output) is removed when `body`
/// returns normally, unless `SWITCHBOARD_E2E_KEEP` is set, and kept (its path is
/// in the error) when it throws.
func withServer<R>(
    _ arguments: [String] = [],
    _ body: (ServerProcess) async throws -> R
) async throws -> R {
    let server = try await ServerProcess.start(arguments)
    do {
        let result = try await body(server)
        server.kill()
        _ = await server.child.wait(timeout: .seconds(5))
        if ProcessInfo.processInfo.environment["SWITCHBOARD_E2E_KEEP"] == nil {
            server.directory.remove()
        }
        return result
    } catch {
        server.kill()
        throw E2EError("\(error)\n(server files kept in \(server.directory.path)); server log tail:\n\(server.log.suffix(3000))")
    }
}

/// Polls `condition` every `interval` until it holds; false after `timeout`.
func eventually(
    timeout: Duration,
    interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}

/// Runs `body` in its own task and returns its result, or throws when it takes
/// longer than `timeout`, calling `onTimeout` first (e.g. kill the server so a
/// stuck client call fails) and without waiting for the stuck task.
func withTimeout<T: Sendable>(
    _ timeout: Duration,
    _ what: String,
    onTimeout: @escaping @Sendable () -> Void = {},
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let box = ResumeOnce<T>()
    return try await withCheckedThrowingContinuation { continuation in
        box.set(continuation)
        let work = Task {
            do {
                box.resume(with: .success(try await body()))
            } catch {
                box.resume(with: .failure(error))
            }
        }
        Task {
            try? await Task.sleep(for: timeout)
            if box.resume(with: .failure(E2EError("timed out after \(timeout): \(what)"))) {
                onTimeout()
                work.cancel()
            }
        }
    }
}

private final class ResumeOnce<T: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<T, any Error>?, done: Bool)>((nil, false))

    func set(_ continuation: CheckedContinuation<T, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    @discardableResult
    func resume(with result: Result<T, any Error>) -> Bool {
        let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
            guard !state.done else { return nil }
            state.done = true
            return state.continuation
        }
        continuation?.resume(with: result)
        return continuation != nil
    }
}
