import Foundation
import Glibc

/// Runs programs as another local user, for the access-control tests: a system
/// user made once (`useradd --system`, idempotent) and `setpriv` to switch to it.
/// Only possible when the tests run as root with util-linux's `setpriv` and
/// `useradd` installed (scripts/bootstrap.sh); otherwise ``unavailableReason``
/// says why and the tests that need it are skipped with that reason.
struct OtherUser: Sendable {
    let name: String
    let uid: UInt32
    let gid: UInt32

    static let setpriv = "/usr/bin/setpriv"
    static let useradd = "/usr/sbin/useradd"
    /// The system Python (not a per-user shim under /root, which another user cannot read).
    static let python = "/usr/bin/python3"

    /// Why other-user tests cannot run here, or nil when they can.
    static let unavailableReason: String? = {
        if getuid() != 0 { return "these tests need root (to create a user and switch to it); running as uid \(getuid())" }
        for tool in [setpriv, useradd, python] where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is missing: run scripts/bootstrap.sh"
        }
        return nil
    }()

    /// Whether other-user tests can run; prints the reason once when they cannot.
    static let isAvailable: Bool = {
        if let unavailableReason { print("skipping other-user tests: \(unavailableReason)") }
        return unavailableReason == nil
    }()

    /// The user `name`, created as a system user without a home if missing.
    static func ensure(_ name: String) throws -> OtherUser {
        if let entry = getpwnam(name) {
            return OtherUser(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: useradd)
        process.arguments = ["--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name]
        try process.run()
        process.waitUntilExit()
        // A concurrent creator may have won the race; either way the user must exist now.
        guard let entry = getpwnam(name) else {
            throw E2EError("useradd \(name) failed (exit \(process.terminationStatus)) and the user does not exist")
        }
        return OtherUser(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
    }

    /// The argv prefix that runs a command as this user, with no supplementary groups.
    var launcher: [String] {
        [Self.setpriv, "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--"]
    }

    /// Runs `switchboard args` as this user against `socket`, to its end.
    func cli(_ arguments: [String], socket: String, directory: TempDirectory, timeout: Duration = .seconds(15)) async throws -> CLIResult {
        try await run([try SwitchboardBinary.path()] + arguments, environment: ["SWITCHBOARD_SOCKET": socket], directory: directory, timeout: timeout)
    }

    /// Runs `argv` as this user; stdout and stderr go to files in `directory`.
    func run(
        _ argv: [String],
        environment: [String: String] = [:],
        directory: TempDirectory,
        timeout: Duration = .seconds(15)
    ) async throws -> CLIResult {
        let child = try start(argv, environment: environment, directory: directory)
        return await child.finish(timeout: timeout)
    }

    /// Starts `argv` as this user without waiting for it.
    func start(_ argv: [String], environment: [String: String] = [:], directory: TempDirectory) throws -> UserProcess {
        try UserProcess(launcher + argv, environment: environment, directory: directory)
    }
}

/// A process started through `setpriv` (see ``OtherUser``), output in files.
final class UserProcess: @unchecked Sendable {
    let argv: [String]
    let stdoutPath: String
    let stderrPath: String
    // Only touched in init and by its own termination handler.
    private let process: Process
    private let ended = Locked<Termination?>(nil)

    init(_ argv: [String], environment: [String: String], directory: TempDirectory) throws {
        self.argv = argv
        let name = URL(fileURLWithPath: argv.last(where: { !$0.hasPrefix("-") }) ?? "user").lastPathComponent
        stdoutPath = directory.file("as-user-\(name)", suffix: ".out")
        stderrPath = directory.file("as-user-\(name)", suffix: ".err")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SWITCHBOARD_") }
        env.merge(environment) { _, new in new }
        process.environment = env
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let ended = self.ended
        process.terminationHandler = { finished in
            ended.withLock {
                $0 = Termination(status: finished.terminationStatus, signaled: finished.terminationReason == .uncaughtSignal)
            }
        }
        try process.run()
        try? out.close()
        try? err.close()
        self.process = process
    }

    deinit { kill(signal: SIGKILL) }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { ended.withLock { $0 == nil } }
    var stdout: String { (FileManager.default.contents(atPath: stdoutPath)).map { String(decoding: $0, as: UTF8.self) } ?? "" }
    var stderr: String { (FileManager.default.contents(atPath: stderrPath)).map { String(decoding: $0, as: UTF8.self) } ?? "" }

    func kill(signal: Int32) {
        if isRunning { _ = Glibc.kill(process.processIdentifier, signal) }
    }

    /// Waits for the end (SIGKILL after `timeout`).
    func finish(timeout: Duration) async -> CLIResult {
        let deadline = ContinuousClock.now + timeout
        var timedOut = false
        while isRunning {
            if ContinuousClock.now >= deadline {
                timedOut = true
                kill(signal: SIGKILL)
                while isRunning { try? await Task.sleep(for: .milliseconds(10)) }
                break
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return CLIResult(
            arguments: argv,
            termination: ended.withLock { $0 } ?? Termination(status: SIGKILL, signaled: true),
            stdout: stdout,
            stderr: stderr,
            timedOut: timedOut,
            ended: .now
        )
    }
}
