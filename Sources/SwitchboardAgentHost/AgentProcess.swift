#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SwitchboardCore

/// What starting an agent needs: its argv, where it runs and what environment it
/// gets (the server's environment is cleared except `environmentAllowList`).
public struct AgentLaunch: Sendable {
    public var command: [String]
    /// The agent's working directory; nil: the server's.
    public var cwd: String?
    /// Names of variables copied from the server's environment; nothing else is.
    public var environmentAllowList: [String]
    /// Fixed variables, `"NAME=value"`, after the allowed ones (a fixed one wins).
    public var fixedEnvironment: [String]
    /// The longest line accepted from the agent's stdout.
    public var maxLineBytes: Int
    /// The keeper executable; nil: `switchboard-agent-keeper` next to this executable.
    public var keeperPath: String?

    public static let defaultMaxLineBytes = 8 * 1024 * 1024

    public init(
        command: [String],
        cwd: String? = nil,
        environmentAllowList: [String] = ["PATH", "HOME", "LANG"],
        fixedEnvironment: [String] = [],
        maxLineBytes: Int = AgentLaunch.defaultMaxLineBytes,
        keeperPath: String? = nil
    ) {
        self.command = command
        self.cwd = cwd
        self.environmentAllowList = environmentAllowList
        self.fixedEnvironment = fixedEnvironment
        self.maxLineBytes = maxLineBytes
        self.keeperPath = keeperPath
    }

    /// The agent's environment: allowed variables of this process, then the fixed ones.
    public func environment() -> [String] {
        var result: [String] = []
        let fixedNames = Set(fixedEnvironment.map { String($0.prefix { $0 != "=" }) })
        for name in environmentAllowList where !fixedNames.contains(name) {
            if let value = getenv(name) { result.append("\(name)=\(String(cString: value))") }
        }
        return result + fixedEnvironment
    }
}

/// Why an agent process ended (or is being given up).
public enum AgentExitCause: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    /// The agent closed its stdout but did not exit; the group was killed.
    case closedStdout
    case protocolViolation(AgentProtocolViolation)
    /// Killed by us (cancel grace over, stop, close).
    case killed(reason: String)
    case spawnFailed(String)

    public var description: String {
        switch self {
        case .exited(let status): "agent exited with status \(status)"
        case .signaled(let signal): "agent was killed by signal \(signal)"
        case .closedStdout: "agent closed its stdout"
        case .protocolViolation(let violation): violation.description
        case .killed(let reason): "agent was killed: \(reason)"
        case .spawnFailed(let message): "agent could not be started: \(message)"
        }
    }
}

/// The end of an agent process: why, and the last of its stderr.
public struct AgentExit: Sendable, Equatable, CustomStringConvertible {
    public let cause: AgentExitCause
    public let stderrTail: String

    public var description: String {
        let tail = stderrTail.trimmingTrailingNewlines
        return tail.isEmpty ? cause.description : "\(cause.description); stderr: \(tail)"
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var text = Substring(self)
        while let last = text.last, last == "\n" || last == "\r" { text = text.dropLast() }
        return String(text)
    }
}

/// One live agent: its keeper's process group, its pipes and the reader thread
/// that owns them.
///
/// The reader thread polls stdout, stderr, the keeper's status pipe and a wake
/// pipe; it splits stdout into lines and decodes them, drains stderr into the ring,
/// flushes queued writes to stdin without blocking and escalates SIGTERM to SIGKILL.
/// It calls `handler` with each message, then once with the end. Signals go to the
/// group only while the keeper is unreaped (its pid is the group id), so a reused
/// pid is never signalled.
public final class AgentProcess: Sendable {
    public enum Event: Sendable {
        case message(JSONRPCMessage)
        case ended(AgentExit)
    }

    /// The keeper's pid, which is the process group id.
    public let processGroupID: pid_t

    private struct State {
        var pendingWrites: [UInt8] = []
        var closeStdinRequested = false
        var termRequested: (reason: String, killAfter: Duration)?
        var killRequested: String?
        var reaped = false
        var agentPID: pid_t?
        var stderr = StderrRing()
        var exit: AgentExit?
    }

    private let state = Mutex(State())
    private let fds: SpawnedProcess
    private let statusFD: Int32
    private let wake: (read: Int32, write: Int32)
    private let handler: @Sendable (Event) -> Void
    private let maxLineBytes: Int

    /// Spawns the agent under its keeper and starts the reader thread; `handler` runs
    /// on that thread, in order.
    public init(launch: AgentLaunch, handler: @escaping @Sendable (Event) -> Void) throws(AgentSpawnError) {
        guard !launch.command.isEmpty, !launch.command[0].isEmpty else { throw AgentSpawnError(message: "empty command") }
        guard let keeper = launch.keeperPath ?? AgentProcess.defaultKeeperPath() else {
            throw AgentSpawnError(message: "switchboard-agent-keeper not found next to the executable")
        }
        let lifeline = try AgentProcess.lifelineReadEnd()
        let status: (read: Int32, write: Int32)
        let wake: (read: Int32, write: Int32)
        do {
            status = try ProcessGroup.closeOnExecPipe(flags: 0)
            wake = try ProcessGroup.closeOnExecPipe(flags: O_NONBLOCK)
        } catch {
            throw AgentSpawnError(message: error.message)
        }
        let spawned = ProcessGroup.spawn(
            arguments: [keeper, launch.cwd ?? ""] + launch.command,
            environment: launch.environment(),
            inherited: [lifeline, status.write]
        )
        close(status.write)
        switch spawned {
        case .failure(let failure):
            close(status.read)
            close(wake.read)
            close(wake.write)
            throw AgentSpawnError(message: failure.message)
        case .success(let process):
            fds = process
        }
        for fd in [fds.stdin, fds.stdout, fds.stderr, status.read] {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        processGroupID = fds.pid
        statusFD = status.read
        self.wake = wake
        self.handler = handler
        maxLineBytes = launch.maxLineBytes
        let started = DedicatedThread.start { [self] in runReader() }
        if let error = started {
            ProcessGroup.signalGroup(processGroupID, SIGKILL)
            _ = waitpidBlocking(processGroupID)
            // The wake pipe is closed by deinit (every property is set by now).
            for fd in [fds.stdin, fds.stdout, fds.stderr, statusFD] { close(fd) }
            throw AgentSpawnError(message: "thread: \(ProcessGroup.errorText(error))")
        }
    }

    deinit {
        close(wake.read)
        close(wake.write)
    }

    /// The agent's own pid once the keeper reported it.
    public var agentPID: pid_t? { state.withLock { $0.agentPID } }

    /// The last line the agent wrote on stderr.
    public var lastStderrLine: String { state.withLock { $0.stderr.lastLine } }

    /// The last bytes of the agent's stderr (at most 8 KiB).
    public var stderrTail: String { state.withLock { $0.stderr.tail } }

    /// The end, once the reader thread saw it.
    public var exit: AgentExit? { state.withLock { $0.exit } }

    /// Queues `bytes` for the agent's stdin; false when stdin is closed or the process ended.
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        let queued = state.withLock { state -> Bool in
            guard state.exit == nil, !state.closeStdinRequested else { return false }
            state.pendingWrites.append(contentsOf: bytes)
            return true
        }
        if queued { poke() }
        return queued
    }

    /// Closes the agent's stdin once the queued writes are out.
    public func closeStdin() {
        state.withLock { $0.closeStdinRequested = true }
        poke()
    }

    /// SIGTERM to the group now, SIGKILL after `killAfter` if it is still there.
    public func terminate(reason: String, killAfter: Duration) {
        state.withLock { state in
            if state.termRequested == nil, state.killRequested == nil { state.termRequested = (reason, killAfter) }
        }
        poke()
    }

    /// SIGKILL to the group now.
    public func kill(reason: String) {
        state.withLock { state in
            if state.killRequested == nil { state.killRequested = reason }
        }
        poke()
    }

    private func poke() {
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }

    private func signalGroup(_ signal: Int32) {
        state.withLock { state in
            guard !state.reaped else { return }
            ProcessGroup.signalGroup(processGroupID, signal)
        }
    }

    // MARK: The reader thread

    private func runReader() {
        var splitter = AgentLineSplitter(maxLineBytes: maxLineBytes)
        var stdinFD: Int32 = fds.stdin
        var stdoutOpen = true
        var stderrOpen = true
        var statusLine: [UInt8] = []
        var keeperReport: AgentExitCause?
        var firstCause: AgentExitCause?
        var termSent = false
        var killDeadline: ContinuousClock.Instant?
        var stdoutClosedAt: ContinuousClock.Instant?
        var killSent = false
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)
        defer { buffer.deallocate() }

        func killGroup() {
            guard !killSent else { return }
            killSent = true
            signalGroup(SIGKILL)
        }

        func giveUp(_ cause: AgentExitCause) {
            if firstCause == nil { firstCause = cause }
            killGroup()
        }

        /// Reads stdout until EAGAIN or EOF; handles every complete line.
        func drainStdout() {
            while stdoutOpen {
                let count = read(fds.stdout, buffer.baseAddress, buffer.count)
                if count > 0 {
                    do {
                        try splitter.append(UnsafeRawBufferPointer(rebasing: buffer[..<count])) { line throws(AgentProtocolViolation) in
                            let message = try JSONRPCMessage.decode(line: line)
                            if firstCause == nil { handler(.message(message)) }
                        }
                    } catch {
                        stdoutOpen = false
                        close(fds.stdout)
                        giveUp(.protocolViolation(error))
                    }
                    continue
                }
                if count < 0, errno == EINTR { continue }
                if count < 0, errno == EAGAIN { return }
                stdoutOpen = false
                close(fds.stdout)
                if firstCause == nil, !killSent { stdoutClosedAt = .now }
            }
        }

        func drainStderr() {
            while stderrOpen {
                let count = read(fds.stderr, buffer.baseAddress, buffer.count)
                if count > 0 {
                    let chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
                    state.withLock { $0.stderr.append(chunk) }
                    continue
                }
                if count < 0, errno == EINTR { continue }
                if count < 0, errno == EAGAIN { return }
                stderrOpen = false
                close(fds.stderr)
            }
        }

        /// Reads the keeper's reports; true at EOF (the keeper is dead).
        func drainStatus() -> Bool {
            var local = [UInt8](repeating: 0, count: 256)
            while true {
                let count = read(statusFD, &local, local.count)
                if count > 0 {
                    statusLine.append(contentsOf: local[..<count])
                    while let newline = statusLine.firstIndex(of: 0x0A) {
                        let text = String(decoding: statusLine[..<newline], as: UTF8.self)
                        statusLine.removeSubrange(...newline)
                        let parts = text.split(separator: " ")
                        guard parts.count == 2, let number = Int32(parts[1]) else { continue }
                        switch parts[0] {
                        case "P": state.withLock { $0.agentPID = number }
                        case "X": keeperReport = .exited(number)
                        case "S": keeperReport = .signaled(number)
                        default: break
                        }
                    }
                    continue
                }
                if count < 0, errno == EINTR { continue }
                if count < 0, errno == EAGAIN { return false }
                return true
            }
        }

        while true {
            // Requests from other threads.
            let requests = state.withLock { state in
                (state.termRequested, state.killRequested, state.closeStdinRequested, state.pendingWrites.isEmpty)
            }
            if let reason = requests.1 {
                giveUp(.killed(reason: reason))
            } else if let term = requests.0, !termSent {
                termSent = true
                if firstCause == nil { firstCause = .killed(reason: term.reason) }
                signalGroup(SIGTERM)
                killDeadline = .now + term.killAfter
            }
            if let deadline = killDeadline, ContinuousClock.now >= deadline { killGroup() }
            if let closedAt = stdoutClosedAt, ContinuousClock.now >= closedAt + .milliseconds(500) {
                // Stdout closed but the keeper reported no exit: the agent lives on.
                giveUp(.closedStdout)
            }
            if stdinFD >= 0 {
                flushStdin(&stdinFD, closeRequested: requests.2)
            }

            var pollSet: [pollfd] = [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            pollSet.append(pollfd(fd: statusFD, events: Int16(POLLIN), revents: 0))
            if stdoutOpen { pollSet.append(pollfd(fd: fds.stdout, events: Int16(POLLIN), revents: 0)) }
            if stderrOpen { pollSet.append(pollfd(fd: fds.stderr, events: Int16(POLLIN), revents: 0)) }
            let wantsOut = stdinFD >= 0 && !state.withLock { $0.pendingWrites.isEmpty }
            if wantsOut { pollSet.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)) }
            var timeout: Int32 = -1
            let now = ContinuousClock.now
            for deadline in [killDeadline, stdoutClosedAt.map { $0 + .milliseconds(500) }].compactMap({ $0 }) where !killSent {
                let remaining = max(0, Int32(clamping: (deadline - now).components.seconds * 1000 + (deadline - now).components.attoseconds / 1_000_000_000_000_000 + 1))
                timeout = timeout < 0 ? remaining : min(timeout, remaining)
            }
            let ready = poll(&pollSet, nfds_t(pollSet.count), timeout)
            if ready < 0, errno != EINTR {
                // Cannot watch the group any more: end it rather than wait blind.
                giveUp(.killed(reason: "poll: \(ProcessGroup.errorText(errno))"))
                break
            }
            var drainWake = [UInt8](repeating: 0, count: 64)
            while read(wake.read, &drainWake, drainWake.count) > 0 {}
            // Stderr first, so a crash's last words are in the ring before its end is handled.
            drainStderr()
            drainStdout()
            if drainStatus() {
                // The keeper is gone, and with it the group: collect what is left.
                drainStderr()
                drainStdout()
                break
            }
        }

        // The keeper killed its group (agent ended, or our SIGKILL) or died: reap it.
        let termination = waitpidBlocking(processGroupID)
        if stdinFD >= 0 { close(stdinFD) }
        if stdoutOpen { close(fds.stdout) }
        if stderrOpen {
            drainStderr()
            if stderrOpen { close(fds.stderr) }
        }
        close(statusFD)
        let cause: AgentExitCause
        if let firstCause {
            cause = firstCause
        } else if let keeperReport {
            cause = keeperReport
        } else if stdoutClosedAt != nil {
            cause = .closedStdout
        } else if let termination {
            switch termination {
            case .exited(let status): cause = .spawnFailed("keeper exited with status \(status)")
            case .signaled(let signal): cause = .signaled(signal)
            }
        } else {
            cause = .killed(reason: "keeper vanished")
        }
        let exit = state.withLock { state -> AgentExit in
            state.reaped = true
            state.pendingWrites = []
            let exit = AgentExit(cause: cause, stderrTail: state.stderr.tail)
            state.exit = exit
            return exit
        }
        handler(.ended(exit))
    }

    private func flushStdin(_ stdinFD: inout Int32, closeRequested: Bool) {
        while true {
            let pending = state.withLock { $0.pendingWrites }
            if pending.isEmpty {
                if closeRequested {
                    close(stdinFD)
                    stdinFD = -1
                }
                return
            }
            let written = pending.withUnsafeBytes { write(stdinFD, $0.baseAddress, $0.count) }
            if written > 0 {
                state.withLock { $0.pendingWrites.removeFirst(written) }
                continue
            }
            if written < 0, errno == EINTR { continue }
            if written < 0, errno == EAGAIN { return }
            // EPIPE: the agent closed its stdin; what was queued cannot arrive, and
            // nothing more is queued.
            state.withLock { state in
                state.pendingWrites = []
                state.closeStdinRequested = true
            }
            close(stdinFD)
            stdinFD = -1
            return
        }
    }

    // MARK: The keeper and the lifeline

    /// `switchboard-agent-keeper` in the directory of the running executable.
    static func defaultKeeperPath() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        let executable = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = executable.lastIndex(of: "/") else { return nil }
        let candidate = String(executable[..<slash]) + "/switchboard-agent-keeper"
        return access(candidate, X_OK) == 0 ? candidate : nil
    }

    /// The read end of this process's lifeline pipe, handed to every keeper. The
    /// write end is held by this process alone (close-on-exec) and never closed, so
    /// keepers read EOF exactly when this process is gone, however it died.
    private static let lifeline: Result<Int32, AgentSpawnError> = {
        do throws(SpawnFailure) {
            let pipe = try ProcessGroup.closeOnExecPipe(flags: 0)
            return .success(pipe.read)
        } catch {
            return .failure(AgentSpawnError(message: "lifeline: \(error.message)"))
        }
    }()

    private static func lifelineReadEnd() throws(AgentSpawnError) -> Int32 {
        try lifeline.get()
    }
}

/// Waits for `pid` (the keeper, which is dead or about to be).
private func waitpidBlocking(_ pid: pid_t) -> ProcessTermination? {
    var status: Int32 = 0
    while true {
        let result = waitpid(pid, &status, 0)
        if result == pid { return ProcessTermination(waitStatus: status) }
        if result == -1, errno == EINTR { continue }
        return nil
    }
}

/// The agent could not be started.
public struct AgentSpawnError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { "agent could not be started: \(message)" }
}
