// switchboard-bench: Switchboard's load generator on the Swift client library.
//
//   switchboard-bench unary        --socket P [--calls N] [--concurrency C] [--warmup W] [--samples FILE]
//   switchboard-bench stream       --socket P [--chunks N] [--repeat R]
//   switchboard-bench busy-status  --socket P [--sessions S] [--words W] [--calls N] [--interval-us U]
//                                  [--settle-ms M] [--samples FILE]
//   switchboard-bench sessions     --socket P --server-pid PID [--count N]
//   switchboard-bench connections  --socket P --server-pid PID [--count N]
//   switchboard-bench soak         --socket P --server-pid PID [--checkpoints 10000,50000,100000]
//                                  [--warmup W]   (one-word prompts on one session, RSS at each)
//   switchboard-bench startup      --socket P [--expect-sessions N] -- COMMAND ARGS...
//                                  (spawns COMMAND, times first status answer)
//   switchboard-bench wait         --socket P [--timeout-ms T]     (until a status call is answered)
//   any of them with --nio-executor: NIO's event loops as the global executor
//
// Every measurement prints one JSON line on stdout (see BenchCommon.emitResult).
// The server is a separate process started (and pinned) by run.sh.

import BenchCommon
import NIOCore
import NIOPosix
import SwitchboardClient
import SwitchboardProtocol

#if canImport(Glibc)
import Glibc
#endif

let options = Options()
let socketPath = options.string("socket", "/tmp/switchboard-bench.sock")

// --nio-executor: NIO's event loops become Swift Concurrency's global executor, so a
// call's continuation resumes on the loop thread that read the answer (no hop to the
// cooperative pool). Measures what the client's two thread hops per call cost.
if options.flag("nio-executor") {
    guard NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() else {
        printError("switchboard-bench: could not install NIO as the global executor")
        exit(1)
    }
}

func fail(_ message: String) -> Never {
    printError("switchboard-bench: \(message)")
    exit(1)
}

// MARK: - unary

/// Sequential (concurrency 1) or `concurrency` tasks calling GetServerStatus on one connection.
func unary() async throws {
    let calls = options.int("calls", 20_000)
    let concurrency = max(1, options.int("concurrency", 1))
    let warmup = options.int("warmup", 2_000)
    try await withSwitchboardClient(socketPath: socketPath) { client in
        for _ in 0..<warmup { _ = try await client.serverStatus() }
        let perTask = calls / concurrency
        let begin = nowNanos()
        let samples = try await withThrowingTaskGroup(of: Samples.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var samples = Samples(capacity: perTask)
                    for _ in 0..<perTask {
                        let t0 = nowNanos()
                        _ = try await client.serverStatus()
                        samples.append(nowNanos() - t0)
                    }
                    return samples
                }
            }
            var all = Samples(capacity: perTask * concurrency)
            for try await part in group { all.append(contentsOf: part) }
            return all
        }
        let elapsed = Double(nowNanos() - begin) / 1e9
        var fields = samples.summary()
        fields["calls_per_s"] = Double(samples.count) / elapsed
        fields["calls"] = Double(samples.count)
        fields["concurrency"] = Double(concurrency)
        if let path = options.optional("samples") { samples.write(toPath: path) }
        emitResult("unary", fields)
    }
}

// MARK: - stream

/// One prompt of `chunks` 32-byte words to the echo backend; every output event is
/// one 32-byte chunk. Rate = chunks / (call start → last event).
func stream() async throws {
    let chunks = options.int("chunks", 100_000)
    let repeats = max(1, options.int("repeat", 1))
    let prompt = promptOf32ByteWords(chunks)
    try await withSwitchboardClient(socketPath: socketPath) { client in
        let session = try await client.createSession(CreateSessionRequest(settings: SessionSettings(backend: "echo")))
        // Warm-up turn (small) so connection setup and first-use costs are not measured.
        for try await _ in client.prompt(sessionID: session.id, promptOf32ByteWords(1_000)) {}
        for _ in 0..<repeats {
            var received = 0
            var bytes = 0
            var firstChunk: UInt64 = 0
            let begin = nowNanos()
            for try await event in client.prompt(sessionID: session.id, prompt) {
                if case .output(let chunk) = event {
                    if received == 0 { firstChunk = nowNanos() }
                    received += 1
                    bytes += chunk.data.count
                }
            }
            let end = nowNanos()
            guard received == chunks, bytes == chunks * 32 else {
                fail("stream: expected \(chunks) chunks of 32 bytes, got \(received) chunks, \(bytes) bytes")
            }
            let seconds = Double(end - begin) / 1e9
            emitResult("stream", [
                "chunks": Double(received),
                "chunks_per_s": Double(received) / seconds,
                "mb_per_s": Double(bytes) / seconds / 1e6,
                "first_chunk_ms": Double(firstChunk - begin) / 1e6,
                "steady_chunks_per_s": Double(received - 1) / (Double(end - firstChunk) / 1e9),
            ])
        }
    }
}

// MARK: - status under load

/// Status latency on its own connection while `sessions` sessions have a turn running
/// (echo backend with the server's --echo-delay, prompts of `words` tokens, spread over
/// connections of at most 100 calls). `--sessions 0` measures the idle server the same way.
/// After `settle-ms`, `calls` status calls are made `interval-us` apart (a poller, so that
/// the probe itself does not become the server's main load).
func busyStatus() async throws {
    let sessionCount = options.int("sessions", 1_000)
    let words = options.int("words", 1_000)
    let calls = options.int("calls", 5_000)
    let warmup = options.int("warmup", 500)
    let intervalUs = options.int("interval-us", 1_000)
    let settleMs = options.int("settle-ms", 2_000)
    let perConnection = 100
    let prompt = promptOf32ByteWords(words)

    var loadClients: [SwitchboardClient] = []
    for _ in 0..<((sessionCount + perConnection - 1) / perConnection) {
        loadClients.append(try await SwitchboardClient.connect(socketPath: socketPath))
    }
    let probe = try await SwitchboardClient.connect(socketPath: socketPath)

    var sessionIDs: [String] = []
    for index in 0..<sessionCount {
        let session = try await loadClients[index / perConnection].createSession(
            CreateSessionRequest(settings: SessionSettings(backend: "echo")))
        sessionIDs.append(session.id)
    }

    let chunksSeen = ChunkCounter()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for (index, id) in sessionIDs.enumerated() {
            let client = loadClients[index / perConnection]
            group.addTask {
                do {
                    for try await event in client.prompt(sessionID: id, prompt) {
                        if case .output = event { chunksSeen.add() }
                    }
                } catch let error as SwitchboardError where error.code == .cancelled {
                    // expected when the measurement ends
                }
            }
        }
        // Wait until every turn is running.
        let deadline = nowNanos() + 60_000_000_000
        var inFlight = 0
        while true {
            let status = try await probe.serverStatus()
            inFlight = Int(status.turnsInFlight)
            if inFlight >= sessionCount { break }
            if nowNanos() > deadline { fail("busy-status: only \(inFlight) of \(sessionCount) turns started") }
            try await Task.sleep(for: .milliseconds(20))
        }
        // Let the load reach its steady rate (every turn streaming a chunk per echo delay).
        try await Task.sleep(for: .milliseconds(settleMs))
        for _ in 0..<warmup { _ = try await probe.serverStatus() }
        let chunksBefore = chunksSeen.value
        var samples = Samples(capacity: calls)
        let begin = nowNanos()
        var minInFlight = Int.max
        for _ in 0..<calls {
            let t0 = nowNanos()
            let status = try await probe.serverStatus()
            samples.append(nowNanos() - t0)
            minInFlight = min(minInFlight, Int(status.turnsInFlight))
            // A status poller, not a load generator: back-to-back calls would make the
            // probe itself the server's main load.
            if intervalUs > 0 { try await Task.sleep(for: .microseconds(intervalUs)) }
        }
        let seconds = Double(nowNanos() - begin) / 1e9
        let chunksDuring = chunksSeen.value - chunksBefore
        var fields = samples.summary()
        fields["sessions"] = Double(sessionCount)
        fields["min_turns_in_flight"] = Double(sessionCount == 0 ? 0 : minInFlight)
        fields["load_chunks_per_s"] = Double(chunksDuring) / seconds
        if let path = options.optional("samples") { samples.write(toPath: path) }
        emitResult("busy_status", fields)
        group.cancelAll()
    }
    for client in loadClients { await client.close() }
    await probe.close()
}

final class ChunkCounter: @unchecked Sendable {
    private var count = 0
    private var lock = pthread_mutex_t()
    init() { pthread_mutex_init(&lock, nil) }
    func add() { pthread_mutex_lock(&lock); count += 1; pthread_mutex_unlock(&lock) }
    var value: Int { pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }; return count }
}

// MARK: - memory

func settleAndMeasure(_ pid: Int32) async -> Int {
    // Let the server finish any deferred work, then take the lowest of a few readings.
    try? await Task.sleep(for: .milliseconds(300))
    var best = Int.max
    for _ in 0..<3 {
        best = min(best, residentKiB(pid: pid))
        try? await Task.sleep(for: .milliseconds(100))
    }
    return best
}

/// Server RSS growth per idle session: create `count` sessions (64 calls in flight).
func sessions() async throws {
    let count = options.int("count", 100_000)
    guard let pid = Int32(options.string("server-pid", "")) else { fail("sessions: --server-pid is required") }
    try await withSwitchboardClient(socketPath: socketPath) { client in
        // Warm the paths once so first-use allocations are not counted per session.
        for _ in 0..<100 { _ = try await client.serverStatus() }
        let warm = try await client.createSession()
        _ = try await client.closeSession(id: warm.id)
        let before = await settleAndMeasure(pid)
        let begin = nowNanos()
        let inFlight = 64
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<inFlight {
                group.addTask {
                    var index = worker
                    while index < count {
                        _ = try await client.createSession(CreateSessionRequest(settings: SessionSettings(backend: "echo")))
                        index += inFlight
                    }
                }
            }
            try await group.waitForAll()
        }
        let seconds = Double(nowNanos() - begin) / 1e9
        let status = try await client.serverStatus()
        guard status.sessionsTotal >= UInt32(count) else { fail("sessions: server holds \(status.sessionsTotal) sessions") }
        let after = await settleAndMeasure(pid)
        emitResult("sessions", [
            "count": Double(count),
            "rss_before_kib": Double(before),
            "rss_after_kib": Double(after),
            "bytes_per_session": Double(after - before) * 1024 / Double(count),
            "creates_per_s": Double(count) / seconds,
        ])
    }
}

/// Server RSS growth per idle connection: `count` raw connections, each handshaken.
func connections() async throws {
    let count = options.int("count", 1_000)
    guard let pid = Int32(options.string("server-pid", "")) else { fail("connections: --server-pid is required") }
    raiseFileLimit()
    // Warm: one connection through the same path.
    if let fd = RawConnection.open(socketPath) { _ = RawConnection.handshake(fd); close(fd) }
    let before = await settleAndMeasure(pid)
    var fds: [Int32] = []
    for _ in 0..<count {
        guard let fd = RawConnection.open(socketPath) else { fail("connections: connect failed after \(fds.count)") }
        guard RawConnection.handshake(fd) else { fail("connections: handshake failed after \(fds.count)") }
        fds.append(fd)
    }
    let after = await settleAndMeasure(pid)
    for fd in fds { close(fd) }
    emitResult("connections", [
        "count": Double(count),
        "rss_before_kib": Double(before),
        "rss_after_kib": Double(after),
        "bytes_per_connection": Double(after - before) * 1024 / Double(count),
    ])
}

/// Server RSS over a long run of one-word prompts on one session (issue #12's leak):
/// `warmup` prompts, a settled RSS reading, then one JSON line per checkpoint (prompts
/// counted after the warm-up) with the settled RSS and the growth per prompt since the
/// warm-up. Prompts are sequential on one connection, as a chat client sends them.
func soak() async throws {
    let checkpoints = options.string("checkpoints", "10000,50000,100000")
        .split(separator: ",").compactMap { Int($0) }.sorted()
    let warmup = options.int("warmup", 1_000)
    guard let pid = Int32(options.string("server-pid", "")) else { fail("soak: --server-pid is required") }
    guard let first = checkpoints.first, first > 0 else { fail("soak: --checkpoints needs positive counts") }
    try await withSwitchboardClient(socketPath: socketPath) { client in
        let session = try await client.createSession(CreateSessionRequest(settings: SessionSettings(backend: "echo")))
        func promptOnce() async throws {
            var chunks = 0
            for try await event in client.prompt(sessionID: session.id, "hello") {
                if case .output = event { chunks += 1 }
            }
            guard chunks == 1 else { fail("soak: expected one output chunk per prompt, got \(chunks)") }
        }
        for _ in 0..<warmup { try await promptOnce() }
        let base = await settleAndMeasure(pid)
        var done = 0
        var promptingNanos: UInt64 = 0
        for checkpoint in checkpoints {
            let begin = nowNanos()
            while done < checkpoint {
                try await promptOnce()
                done += 1
            }
            promptingNanos += nowNanos() - begin
            let elapsed = Double(promptingNanos) / 1e9
            let rss = await settleAndMeasure(pid)
            emitResult("soak", [
                "prompts": Double(done),
                "rss_base_kib": Double(base),
                "rss_kib": Double(rss),
                "bytes_per_prompt": Double(rss - base) * 1024 / Double(done),
                "prompts_per_s": Double(done) / elapsed,
            ])
        }
    }
}

func raiseFileLimit() {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

// MARK: - startup

/// Spawns the command after `--`, then connects every 100 µs until a status call is
/// answered: process start → first answered status call. With `--expect-sessions N`
/// (a server reloading a state directory) that first answer must already count N
/// sessions, so the figure includes the reload.
func startup() async throws {
    let expectedSessions = options.int("expect-sessions", 0)
    guard let separator = CommandLine.arguments.firstIndex(of: "--"), separator + 1 < CommandLine.arguments.count else {
        fail("startup: give the server command after --")
    }
    let command = Array(CommandLine.arguments[(separator + 1)...])
    unlink(socketPath)
    let begin = nowNanos()
    var pid: pid_t = 0
    let argv = command.map { strdup($0) } + [nil]
    // The server's output goes to /dev/null: only the first answer matters here.
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    defer { posix_spawn_file_actions_destroy(&actions) }
    let spawned = posix_spawnp(&pid, command[0], &actions, nil, argv, environ)
    guard spawned == 0 else { fail("startup: cannot spawn \(command[0]): \(spawned)") }
    var answered: UInt64 = 0
    var attempts = 0
    var sessionsTotal: UInt32 = 0
    while nowNanos() - begin < 10_000_000_000 {
        attempts += 1
        if let fd = RawConnection.open(socketPath) {
            let status = RawConnection.handshake(fd) ? RawConnection.serverStatus(fd) : nil
            close(fd)
            if let status { answered = nowNanos(); sessionsTotal = status.sessionsTotal; break }
        }
        usleep(100)
    }
    kill(pid, SIGTERM)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    guard answered > 0 else { fail("startup: no status answer within 10 s") }
    guard sessionsTotal >= expectedSessions else {
        fail("startup: the first answer counts \(sessionsTotal) sessions, expected \(expectedSessions)")
    }
    emitResult("startup", [
        "first_status_ms": Double(answered - begin) / 1e6, "attempts": Double(attempts), "sessions": Double(sessionsTotal),
    ])
}

/// Waits until the server answers a status call (used by run.sh after starting one).
func waitReady() -> Int32 {
    let timeout = UInt64(options.int("timeout-ms", 20_000)) * 1_000_000
    let begin = nowNanos()
    while nowNanos() - begin < timeout {
        if let fd = RawConnection.open(socketPath) {
            let ok = RawConnection.handshake(fd) && RawConnection.statusCall(fd)
            close(fd)
            if ok { return 0 }
        }
        usleep(1_000)
    }
    printError("switchboard-bench: no server answered at \(socketPath)")
    return 1
}

// MARK: - main

switch options.command {
case "unary": try await unary()
case "stream": try await stream()
case "busy-status": try await busyStatus()
case "sessions": try await sessions()
case "connections": try await connections()
case "soak": try await soak()
case "startup": try await startup()
case "wait": exit(waitReady())
default:
    printError("usage: switchboard-bench unary|stream|busy-status|sessions|connections|soak|startup|wait --socket PATH ...")
    exit(64)
}
