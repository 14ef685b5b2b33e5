import Foundation
import Glibc
import Synchronization

/// How a child process ended.
struct Termination: Sendable, Equatable, CustomStringConvertible {
    /// The exit code, or the signal number when `signaled`.
    var status: Int32
    var signaled: Bool

    static func exited(_ code: Int32) -> Termination { Termination(status: code, signaled: false) }

    var description: String { signaled ? "killed by signal \(status)" : "exit \(status)" }
}

/// A scratch directory under /tmp with a short path (socket paths must fit in
/// `sun_path`), removed by ``remove()``.
final class TempDirectory: Sendable {
    let path: String
    private let counter = Atomic<Int>(0)

    init() throws {
        var template = Array("/tmp/sbe2e-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw E2EError("mkdtemp failed: errno \(errno)")
        }
        path = String(cString: made)
    }

    /// A fresh file name inside the directory: `<prefix>-<n><suffix>`.
    func file(_ prefix: String, suffix: String = "") -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        return "\(path)/\(prefix)-\(n)\(suffix)"
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A `switchboard` process started by a test. Its stdout and stderr go to files
/// (so no pipe can fill up and block it), readable at any time while it runs.
/// The process is SIGKILLed when this object goes away and it is still running.
final class ChildProcess: @unchecked Sendable {
    let arguments: [String]
    let stdoutPath: String
    let stderrPath: String
    let pid: Int32
    let started: ContinuousClock.Instant

    // `Process` is not Sendable; it is only touched in init and in its own
    // termination handler. Everything mutable after launch lives in `ended`.
    private let process: Process
    private let ended = Locked<(termination: Termination, at: ContinuousClock.Instant)?>(nil)

    init(arguments: [String], environment: [String: String] = [:], stdin: String? = nil, directory: TempDirectory) throws {
        let name = arguments.first ?? "switchboard"
        self.arguments = arguments
        stdoutPath = directory.file(name, suffix: ".out")
        stderrPath = directory.file(name, suffix: ".err")
        let fileManager = FileManager.default
        _ = fileManager.createFile(atPath: stdoutPath, contents: nil)
        _ = fileManager.createFile(atPath: stderrPath, contents: nil)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: try SwitchboardBinary.path())
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SWITCHBOARD_") }
        env.merge(environment) { _, new in new }
        process.environment = env

        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardOutput = out
        process.standardError = err
        var input: FileHandle? = nil
        if let stdin {
            let stdinPath = directory.file(name, suffix: ".in")
            _ = fileManager.createFile(atPath: stdinPath, contents: Data(stdin.utf8))
            input = FileHandle(forReadingAtPath: stdinPath)
            process.standardInput = input
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        let ended = self.ended
        process.terminationHandler = { finished in
            let termination = Termination(
                status: finished.terminationStatus,
                signaled: finished.terminationReason == .uncaughtSignal
            )
            let now = ContinuousClock.now
            ended.withLock { $0 = (termination, now) }
        }
        started = .now
        try process.run()
        try? out.close()
        try? err.close()
        try? input?.close()
        self.process = process
        pid = process.processIdentifier
    }

    deinit {
        kill(signal: SIGKILL)
    }

    var isRunning: Bool { ended.withLock { $0 == nil } }

    /// When and how the process ended, nil while it runs.
    var termination: (termination: Termination, at: ContinuousClock.Instant)? { ended.withLock { $0 } }

    func kill(signal: Int32) {
        if isRunning { _ = Glibc.kill(pid, signal) }
    }

    var stdout: String { Self.read(stdoutPath) }
    var stderr: String { Self.read(stderrPath) }

    private static func read(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Waits for the process to end; nil when it is still running after `timeout`.
    func wait(timeout: Duration) async -> Termination? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let done = termination { return done.termination }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits up to `timeout`, then SIGKILLs the process; returns its result with
    /// `timedOut` set when it had to be killed.
    func finish(timeout: Duration) async -> CLIResult {
        var timedOut = false
        var result = await wait(timeout: timeout)
        if result == nil {
            timedOut = true
            kill(signal: SIGKILL)
            result = await wait(timeout: .seconds(10))
        }
        return CLIResult(
            arguments: arguments,
            termination: result ?? Termination(status: -1, signaled: true),
            stdout: stdout,
            stderr: stderr,
            timedOut: timedOut,
            ended: termination?.at ?? .now
        )
    }

    /// Polls until `stdout` satisfies `condition`; false when the process ended
    /// or `timeout` passed first.
    func waitForStdout(timeout: Duration, _ condition: (String) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(stdout) { return true }
            if !isRunning { return condition(stdout) }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}

/// The outcome of one CLI run.
struct CLIResult: Sendable, CustomStringConvertible {
    var arguments: [String]
    var termination: Termination
    var stdout: String
    var stderr: String
    /// The hard timeout expired and the process was SIGKILLed.
    var timedOut: Bool
    /// When the process ended (as seen by the termination handler).
    var ended: ContinuousClock.Instant

    /// The exit code; -1 when the process was killed by a signal.
    var status: Int32 { termination.signaled ? -1 : termination.status }

    var description: String {
        """
        `switchboard \(arguments.joined(separator: " "))` -> \(termination)\(timedOut ? " (TIMED OUT, killed)" : "")
        --- stdout ---
        \(stdout)
        --- stderr ---
        \(stderr)
        """
    }
}

/// Runs `switchboard args` to its end (hard timeout: SIGKILL) and returns its
/// exit status and output. `socket` is passed as `SWITCHBOARD_SOCKET`.
func runCLI(
    _ arguments: [String],
    socket: String?,
    environment: [String: String] = [:],
    stdin: String? = nil,
    timeout: Duration = .seconds(15),
    directory: TempDirectory
) async throws -> CLIResult {
    let child = try startCLI(arguments, socket: socket, environment: environment, stdin: stdin, directory: directory)
    return await child.finish(timeout: timeout)
}

/// Starts `switchboard args` without waiting for it.
func startCLI(
    _ arguments: [String],
    socket: String?,
    environment: [String: String] = [:],
    stdin: String? = nil,
    directory: TempDirectory
) throws -> ChildProcess {
    var env = environment
    if let socket { env["SWITCHBOARD_SOCKET"] = socket }
    return try ChildProcess(arguments: arguments, environment: env, stdin: stdin, directory: directory)
}
