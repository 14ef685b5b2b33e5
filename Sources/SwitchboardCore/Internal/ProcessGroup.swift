#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended, decoded from a `waitpid` status.
package enum ProcessTermination: Sendable, Hashable {
    case exited(Int32)
    case signaled(Int32)

    /// `WIFEXITED`/`WIFSIGNALED` by hand: the C macros do not import.
    package init?(waitStatus status: Int32) {
        let low = status & 0x7f
        if low == 0 {
            self = .exited((status >> 8) & 0xff)
        } else if low != 0x7f {
            self = .signaled(low)
        } else {
            return nil  // stopped or continued, not an end
        }
    }
}

/// A child started as the leader of its own process group, stdio on pipes.
///
/// The `stdin`, `stdout` and `stderr` descriptors are the parent's ends (close on
/// exec, so a concurrent spawn never inherits them). The group id equals `pid`.
package struct SpawnedProcess: Sendable {
    package let pid: pid_t
    package let stdin: Int32
    package let stdout: Int32
    package let stderr: Int32
}

/// Starting, signalling and reaping commands run as a process group.
package enum ProcessGroup {
    /// Spawns `arguments` (looked up in `PATH` when it has no slash) with
    /// `environment`, in a new process group, with default signal dispositions and
    /// an empty signal mask. `inherited` descriptors become 3, 4, ... in the child
    /// (nothing else above stdio reaches it). Returns the error text on failure.
    package static func spawn(
        arguments: [String],
        environment: [String],
        inherited: [Int32] = []
    ) -> Result<SpawnedProcess, SpawnFailure> {
        guard let program = arguments.first, !program.isEmpty else {
            return .failure(SpawnFailure(message: "empty command"))
        }
        var pipes: [(read: Int32, write: Int32)] = []
        for _ in 0..<3 {
            do {
                pipes.append(try makePipe())
            } catch {
                for pipe in pipes {
                    close(pipe.read)
                    close(pipe.write)
                }
                return .failure(error)
            }
        }
        let (stdinPipe, stdoutPipe, stderrPipe) = (pipes[0], pipes[1], pipes[2])
        let childEnds = [stdinPipe.read, stdoutPipe.write, stderrPipe.write]
        let parentEnds = [stdinPipe.write, stdoutPipe.read, stderrPipe.read]

        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_adddup2(&fileActions, stdinPipe.read, 0)
        posix_spawn_file_actions_adddup2(&fileActions, stdoutPipe.write, 1)
        posix_spawn_file_actions_adddup2(&fileActions, stderrPipe.write, 2)
        // Inherited descriptors are first copied above every target number, so no
        // dup2 onto 3, 4, ... clobbers a source still to be copied, and no source
        // equals its target (dup2 onto itself would keep close-on-exec).
        let sources = inherited.map { fcntl($0, F_DUPFD_CLOEXEC, 10 + Int32(inherited.count)) }
        defer { for fd in sources where fd >= 0 { close(fd) } }
        if sources.contains(where: { $0 < 0 }) {
            for pipe in pipes {
                close(pipe.read)
                close(pipe.write)
            }
            return .failure(SpawnFailure(message: "dup: \(errorText(errno))"))
        }
        for (offset, fd) in sources.enumerated() {
            posix_spawn_file_actions_adddup2(&fileActions, fd, 3 + Int32(offset))
        }
        // Nothing but stdio (and `inherited`) reaches the command, even a descriptor
        // some library of this process opened without close-on-exec.
        if let addCloseFrom = addCloseFromFunction {
            _ = addCloseFrom(&fileActions, 3 + Int32(inherited.count))
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        )
        posix_spawnattr_setpgroup(&attributes, 0)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, program, &fileActions, &attributes, argv, envp)
        for fd in childEnds { close(fd) }
        guard status == 0 else {
            for fd in parentEnds { close(fd) }
            return .failure(SpawnFailure(message: "\(program): \(errorText(status))"))
        }
        return .success(SpawnedProcess(pid: pid, stdin: stdinPipe.write, stdout: stdoutPipe.read, stderr: stderrPipe.read))
    }

    /// Sends `signal` to every process of the group (ESRCH, "none left", is fine).
    package static func signalGroup(_ processGroupID: pid_t, _ signal: Int32) {
        guard processGroupID > 0 else { return }
        _ = kill(-processGroupID, signal)
    }

    /// Reaps `pid` if it has ended; never blocks.
    package static func reapIfExited(_ pid: pid_t) -> ProcessTermination? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return ProcessTermination(waitStatus: status) }
            if result == -1, errno == EINTR { continue }
            if result == -1 { return .exited(-1) }  // ECHILD: someone else reaped it
            return nil
        }
    }

    package static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// A close-on-exec pipe whose ends are above the stdio numbers, so the child's
    /// `dup2` onto 0, 1 and 2 can never clobber one of them.
    private static func makePipe() throws(SpawnFailure) -> (read: Int32, write: Int32) {
        let (read, write) = try closeOnExecPipe(flags: 0)
        return (aboveStdio(read), aboveStdio(write))
    }

    /// `pipe2(O_CLOEXEC | flags)`: atomic, unlike `pipe` followed by `fcntl`, so a
    /// command spawned concurrently by another thread never inherits the pipe.
    /// Glibc only declares `pipe2` under `_GNU_SOURCE`, which Swift's Glibc module
    /// does not set, so it is looked up at run time.
    package static func closeOnExecPipe(flags: Int32) throws(SpawnFailure) -> (read: Int32, write: Int32) {
        guard let pipe2 = pipe2Function else {
            throw SpawnFailure(message: "pipe2 is not available")
        }
        var fds: [Int32] = [-1, -1]
        guard pipe2(&fds, O_CLOEXEC | flags) == 0 else {
            throw SpawnFailure(message: "pipe: \(errorText(errno))")
        }
        return (fds[0], fds[1])
    }

    private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32

    private static let pipe2Function: Pipe2? = {
        guard let symbol = dlsym(nil, "pipe2") else { return nil }
        return unsafeBitCast(symbol, to: Pipe2.self)
    }()

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+, declared only
    /// under `_GNU_SOURCE`): looked up at run time; without it, close-on-exec
    /// alone keeps descriptors out of commands.
    private static let addCloseFromFunction: AddCloseFrom? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    private static func aboveStdio(_ fd: Int32) -> Int32 {
        guard fd <= 2 else { return fd }
        let moved = fcntl(fd, F_DUPFD_CLOEXEC, 3)
        guard moved >= 0 else { return fd }
        close(fd)
        return moved
    }
}

package struct SpawnFailure: Error, Sendable {
    package let message: String
}
