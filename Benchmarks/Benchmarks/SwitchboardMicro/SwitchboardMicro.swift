// Micro-benchmarks of the codec's hot paths (ordo-one/benchmark):
//   - a GetServerStatus answer (CallEnd + ServerStatus) and a prompt output chunk
//     (CallMessage + PromptEvent.output of 32 bytes), encoded the way the NIO encoder
//     does it (withSerializedBytes: one pack into temporary memory) and as a
//     length-prefixed array, and decoded from bytes;
//   - message conversion of a larger message: a ListSessions page of 100 sessions;
//   - FrameReader splitting a buffer of 64 prefixed output chunks.
// Names have no spaces: the tool's threshold reader does not find files for names with spaces.
// *.encode = withSerializedBytes (the NIO encoder's path: one pack into temporary memory),
// *.prefixedBytes = a length-prefixed [UInt8], *.decode = Frame(serializedBytes:).
// Metrics: wall clock and malloc counts (per 1,000 iterations where scaled: .kilo); thresholds live in ../../Thresholds
// (`swift package benchmark thresholds check --path Thresholds`).

import Benchmark
import SwitchboardProtocol

let statusFrame = Frame(callID: 7, kind: .end(CallEnd(code: .ok, payload: .serverStatus(ServerStatus(
    serverVersion: "0.1.0",
    protocolVersion: 1,
    uptimeMs: 123_456,
    connections: 3,
    sessionsTotal: 1_000,
    sessionsIdle: 990,
    sessionsBusy: 10,
    turnsInFlight: 10,
    queuedPrompts: 2,
    maxQueueDepth: 1,
    turnsCompleted: 98_765,
    draining: false,
    sessions: [],
    pid: 4242
)))))

let chunkFrame = Frame(callID: 9, kind: .message(CallMessage(payload: .promptEvent(.output(OutputChunk(
    sequence: 12_345,
    data: Array("w12345xxxxxxxxxxxxxxxxxxxxxxxxx ".utf8)
))))))

let listFrame = Frame(callID: 11, kind: .end(CallEnd(code: .ok, payload: .listSessionsResponse(ListSessionsResponse(
    sessions: (0..<100).map { index in
        Session(
            id: "s-\(String(index, radix: 16))0123456789",
            labels: [Label(key: "team", value: "docs")],
            settings: SessionSettings(backend: "echo", idleTimeoutMs: 3_600_000, turnDeadlineMs: 600_000,
                                      stallTimeoutMs: 120_000, maxQueuedPrompts: 16),
            state: .idle,
            createdAtMs: 1_790_000_000_000,
            lastActivityMs: 1_790_000_100_000,
            turnsCompleted: UInt64(index)
        )
    },
    nextPageToken: "s-640123456789"
)))))

let statusBytes = statusFrame.serializedBytes()
let chunkBytes = chunkFrame.serializedBytes()
let listBytes = listFrame.serializedBytes()
let chunkStream: [UInt8] = (0..<64).flatMap { _ in chunkFrame.prefixedBytes() }

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 1_000,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000,
        // `thresholds check` compares each run's p90 with Thresholds/*.p90.json:
        // allocations are deterministic, so any increase fails; time is noisy on a
        // shared 2-vCPU VM, so only a doubling fails.
        thresholds: [
            .mallocCountTotal: .init(relative: [.p90: 0.0], absolute: [.p90: 0]),
            .wallClock: .init(relative: [.p90: 100.0]),
        ]
    )

    Benchmark("StatusFrame.encode") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(statusFrame.withSerializedBytes { $0.count })
        }
    }
    Benchmark("StatusFrame.prefixedBytes") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(statusFrame.prefixedBytes())
        }
    }
    Benchmark("StatusFrame.decode") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try Frame(serializedBytes: statusBytes))
        }
    }
    Benchmark("OutputChunkFrame.encode") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(chunkFrame.withSerializedBytes { $0.count })
        }
    }
    Benchmark("OutputChunkFrame.prefixedBytes") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(chunkFrame.prefixedBytes())
        }
    }
    Benchmark("OutputChunkFrame.decode") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try Frame(serializedBytes: chunkBytes))
        }
    }
    Benchmark("ListSessions100.encode", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(listFrame.withSerializedBytes { $0.count })
        }
    }
    Benchmark("ListSessions100.decode", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try Frame(serializedBytes: listBytes))
        }
    }
    Benchmark("FrameReader.64OutputChunks", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            var reader = FrameReader()
            reader.append(chunkStream)
            var count = 0
            while let frame = try reader.next() {
                blackHole(frame)
                count += 1
            }
            precondition(count == 64)
        }
    }
}
