#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// One exec turn's child process group, driven by a dedicated thread.
///
/// The thread spawns the command, writes the prompt to its stdin, reads stdout and
/// stderr with `poll`, signals the group on request (SIGTERM, then SIGKILL after the
/// grace period) and always reaps the child before it reports `.finished`. The async
/// side consumes events with `nextEvent()`. Stdout is not read while more than
/// `maxBufferedBytes` wait to be consumed, so a slow consumer slows the command
/// down (backpressure) instead of growing a buffer.
final class ExecTurnProcess: Sendable {
    enum Event: Sendable {
        case output([UInt8])
        case finished(Result)
    }

    struct Result: Sendable {
        /// Set when the command could not be started.
        var spawnFailure: String?
        var termination: ProcessTermination?
        /// The last bytes of stderr (at most `stderrTailLimit`).
        var stderrTail: [UInt8] = []
        /// Whether we signalled the group before the leader ended.
        var signalledByUs = false
    }

    static let maxBufferedBytes = 256 * 1024
    static let readSize = 64 * 1024
    static let stderrTailLimit = 4096

    private struct State: Sendable {
        var events: [Event] = []
        var consumer: CheckedContinuation<Event, Never>?
        var bufferedBytes = 0
        var readerPaused = false
        var terminateRequested = false
        var finished = false
    }

    private let state = Mutex(State())
    private let wakeRead: Int32
    private let wakeWrite: Int32

    init() throws(SpawnFailure) {
        (wakeRead, wakeWrite) = try ProcessGroup.closeOnExecPipe(flags: O_NONBLOCK)
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    /// Starts the supervising thread (which spawns the command).
    func start(arguments: [String], environment: [String], input: [UInt8], killGrace: Duration) {
        let error = DedicatedThread.start { [self] in
            supervise(arguments: arguments, environment: environment, input: input, killGrace: killGrace)
        }
        if let error {
            deliver(.finished(Result(spawnFailure: "cannot create thread: \(ProcessGroup.errorText(error))")))
        }
    }

    /// The next output chunk, or the end. Not cancellable by itself: cancel with
    /// `terminate()`, which guarantees `.finished` within the kill grace period.
    func nextEvent() async -> Event {
        await withCheckedContinuation { (consumer: CheckedContinuation<Event, Never>) in
            let ready: Event? = state.withLockAnnotated { state in
                if state.events.isEmpty {
                    state.consumer = consumer
                    return nil
                }
                return state.events.removeFirst()
            }
            if let ready { consumer.resume(returning: ready) }
        }
    }

    /// The consumer is done with `byteCount` bytes of output.
    func consumed(byteCount: Int) {
        let resume = state.withLockAnnotated { state -> Bool in
            state.bufferedBytes -= byteCount
            guard state.readerPaused, state.bufferedBytes < Self.maxBufferedBytes else { return false }
            state.readerPaused = false
            return true
        }
        if resume { wake() }
    }

    /// Asks the thread to end the command: SIGTERM to the group, SIGKILL after the
    /// grace period. Idempotent.
    func terminate() {
        let first = state.withLockAnnotated { state -> Bool in
            defer { state.terminateRequested = true }
            return !state.terminateRequested && !state.finished
        }
        if first { wake() }
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)  // EAGAIN: a wake-up is already pending
    }

    private func deliver(_ event: Event) {
        let consumer: CheckedContinuation<Event, Never>? = state.withLockAnnotated { state in
            if case .output(let bytes) = event { state.bufferedBytes += bytes.count }
            if case .finished = event { state.finished = true }
            if let consumer = state.consumer {
                state.consumer = nil
                return consumer
            }
            state.events.append(event)
            return nil
        }
        consumer?.resume(returning: event)
    }

    // MARK: The supervising thread

    private func supervise(arguments: [String], environment: [String], input: [UInt8], killGrace: Duration) {
        let process: SpawnedProcess
        switch ProcessGroup.spawn(arguments: arguments, environment: environment) {
        case .failure(let failure):
            deliver(.finished(Result(spawnFailure: failure.message)))
            return
        case .success(let spawned):
            process = spawned
        }

        var stdinFD: Int32? = process.stdin
        var stdoutFD: Int32? = process.stdout
        var stderrFD: Int32? = process.stderr
        _ = fcntl(process.stdin, F_SETFL, fcntl(process.stdin, F_GETFL) | O_NONBLOCK)
        var inputOffset = 0
        if input.isEmpty { closeFD(&stdinFD) }

        var result = Result()
        var termSentAt: ContinuousClock.Instant?
        var killSent = false
        var exitPollDelayMs: Int32 = 1
        var quietPollsAfterExit = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readSize, alignment: 1)
        defer { buffer.deallocate() }

        while true {
            let (terminateRequested, readerPaused) = state.withLockAnnotated { state -> (Bool, Bool) in
                if !state.readerPaused, state.bufferedBytes >= Self.maxBufferedBytes { state.readerPaused = true }
                return (state.terminateRequested, state.readerPaused)
            }
            let now = ContinuousClock.now
            if result.termination == nil {
                if terminateRequested, termSentAt == nil {
                    termSentAt = now
                    result.signalledByUs = true
                    ProcessGroup.signalGroup(process.pid, SIGTERM)
                }
                if let termSentAt, !killSent, now >= termSentAt + killGrace {
                    killSent = true
                    ProcessGroup.signalGroup(process.pid, SIGKILL)
                }
                if let termination = ProcessGroup.reapIfExited(process.pid) {
                    result.termination = termination
                    // The leader is gone: nothing of its group may outlive the turn.
                    ProcessGroup.signalGroup(process.pid, SIGKILL)
                    closeFD(&stdinFD)
                }
            }
            if result.termination != nil, stdoutFD == nil, stderrFD == nil { break }

            // Once ended, output is discarded rather than held back.
            let discarding = terminateRequested
            var fds: [pollfd] = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if let fd = stdinFD { fds.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)) }
            if let fd = stdoutFD, !readerPaused || discarding {
                fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
            }
            if let fd = stderrFD { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }

            var timeoutMs: Int32
            if result.termination == nil {
                if stdoutFD == nil, stderrFD == nil {
                    // Pipes closed: the leader is exiting (or closed them): poll for it.
                    timeoutMs = exitPollDelayMs
                    exitPollDelayMs = min(exitPollDelayMs * 2, 50)
                } else {
                    timeoutMs = 50  // notices a leader that exits while others hold its pipes
                }
                if let termSentAt, !killSent {
                    let remaining = (termSentAt + killGrace - now).milliseconds + 1
                    timeoutMs = min(timeoutMs, Int32(clamping: max(0, remaining)))
                }
            } else {
                timeoutMs = 50
            }

            let ready = fds.withUnsafeMutableBufferPointer { pointer in
                poll(pointer.baseAddress, nfds_t(pointer.count), timeoutMs)
            }
            if ready < 0 {
                if errno == EINTR { continue }
                break  // cannot happen with valid descriptors; reap below
            }
            let stdoutHeldBack = stdoutFD != nil && readerPaused && !discarding
            if ready == 0, result.termination != nil, !stdoutHeldBack {
                // The leader has ended and its group was killed; only a process that
                // left the group can still hold the pipes. Do not wait for it long.
                quietPollsAfterExit += 1
                if quietPollsAfterExit >= 4 { break }
                continue
            }
            for entry in fds where entry.revents != 0 {
                switch entry.fd {
                case wakeRead:
                    drainWakePipe(buffer)
                case stdinFD:
                    writeInput(input, offset: &inputOffset, to: &stdinFD)
                case stdoutFD:
                    let count = readChunk(from: &stdoutFD, into: buffer)
                    if count > 0, !discarding {
                        deliver(.output(Array(buffer[0..<count])))
                    }
                case stderrFD:
                    let count = readChunk(from: &stderrFD, into: buffer)
                    if count > 0 { appendStderr(buffer[0..<count], to: &result.stderrTail) }
                default:
                    break
                }
            }
        }

        closeFD(&stdinFD)
        closeFD(&stdoutFD)
        closeFD(&stderrFD)
        if result.termination == nil {
            // Only reached if poll failed: end the group and reap, blocking.
            ProcessGroup.signalGroup(process.pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(process.pid, &status, 0) == -1, errno == EINTR {}
            result.termination = ProcessTermination(waitStatus: status) ?? .signaled(SIGKILL)
        }
        deliver(.finished(result))
    }

    private func drainWakePipe(_ buffer: UnsafeMutableRawBufferPointer) {
        while read(wakeRead, buffer.baseAddress, min(buffer.count, 64)) > 0 {}
    }

    private func writeInput(_ input: [UInt8], offset: inout Int, to fd: inout Int32?) {
        guard let descriptor = fd else { return }
        let written = input.withUnsafeBytes { bytes in
            write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        }
        if written > 0 {
            offset += written
            if offset >= input.count { closeFD(&fd) }
        } else if written < 0, errno != EAGAIN, errno != EINTR {
            closeFD(&fd)  // EPIPE: the command does not read its input
        }
    }

    /// Reads what is available; closes `fd` at EOF or on error. Returns the count.
    private func readChunk(from fd: inout Int32?, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let descriptor = fd else { return 0 }
        let count = read(descriptor, buffer.baseAddress, buffer.count)
        if count > 0 { return count }
        if count < 0, errno == EAGAIN || errno == EINTR { return 0 }
        closeFD(&fd)
        return 0
    }

    private func appendStderr(_ bytes: UnsafeMutableRawBufferPointer.SubSequence, to tail: inout [UInt8]) {
        tail.append(contentsOf: bytes)
        if tail.count > Self.stderrTailLimit { tail.removeFirst(tail.count - Self.stderrTailLimit) }
    }

    private func closeFD(_ fd: inout Int32?) {
        if let descriptor = fd { close(descriptor) }
        fd = nil
    }
}
