// grpc-peer: the obvious alternative to Switchboard, measured the same way.
//
// A grpc-swift-2 service with the same two exchanges, on the Posix HTTP/2 transport over
// a Unix domain socket, carrying Switchboard's own message types encoded by Switchboard's
// codec (libprotobuf-c) through a grpc MessageSerializer/MessageDeserializer:
//   /switchboard.v1.Status/GetServerStatus   unary: ServerStatusRequest -> ServerStatus
//   /switchboard.v1.Prompts/Prompt           server streaming: PromptRequest -> PromptEvent*
//                                            (accepted, started, one 32-byte output chunk
//                                            per word of the prompt, finished), like echo.
//
//   grpc-peer serve  --socket P [--nio-executor]
//   grpc-peer unary  --socket P [--calls N] [--concurrency C] [--warmup W] [--samples F] [--nio-executor]
//   grpc-peer stream --socket P [--chunks N] [--repeat R] [--nio-executor]
//   grpc-peer startup --socket P -- COMMAND...   (not used: startup is Switchboard-only)
//
// --nio-executor installs NIO's singleton event loop group as Swift Concurrency's global
// executor (NIOSingletons.installSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor),
// so tasks and I/O share threads: the configuration grpc-swift recommends for latency.

import BenchCommon
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOCore
import NIOPosix
import SwitchboardProtocol

#if canImport(Glibc)
import Glibc
#endif

let options = Options()
let socketPath = options.string("socket", "/tmp/grpc-peer.sock")

if options.flag("nio-executor") {
    guard NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() else {
        printError("grpc-peer: could not install NIO as the global executor")
        exit(1)
    }
}

func fail(_ message: String) -> Never {
    printError("grpc-peer: \(message)")
    exit(1)
}

// MARK: - codec: Switchboard's Payload, carried as the body of a Frame (call message)

struct PayloadSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: Payload) throws -> Bytes {
        Frame(kind: .message(CallMessage(payload: message))).withSerializedBytes { Bytes($0) }
    }
}

struct PayloadDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Payload {
        let frame = try serializedMessageBytes.withUnsafeBytes { try Frame(serializedBytes: $0) }
        guard case .message(let message) = frame.kind, let payload = message.payload else {
            throw RPCError(code: .invalidArgument, message: "expected a call message with a payload")
        }
        return payload
    }
}

let statusMethod = MethodDescriptor(fullyQualifiedService: "switchboard.v1.Status", method: "GetServerStatus")
let promptMethod = MethodDescriptor(fullyQualifiedService: "switchboard.v1.Prompts", method: "Prompt")

// MARK: - server

struct PeerService: RegistrableRPCService {
    let started = nowNanos()

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let started = self.started
        router.registerHandler(
            forMethod: statusMethod,
            deserializer: PayloadDeserializer(),
            serializer: PayloadSerializer()
        ) { request, _ in
            var iterator = request.messages.makeAsyncIterator()
            guard case .serverStatusRequest? = try await iterator.next() else {
                throw RPCError(code: .invalidArgument, message: "expected server_status_request")
            }
            let status = ServerStatus(
                serverVersion: "grpc-peer",
                protocolVersion: 1,
                uptimeMs: (nowNanos() - started) / 1_000_000,
                connections: 1,
                sessionsTotal: 0,
                sessionsIdle: 0,
                sessionsBusy: 0,
                turnsInFlight: 0,
                queuedPrompts: 0,
                maxQueueDepth: 0,
                turnsCompleted: 0,
                draining: false,
                sessions: [],
                pid: UInt32(getpid())
            )
            return StreamingServerResponse(single: ServerResponse(message: .serverStatus(status)))
        }
        router.registerHandler(
            forMethod: promptMethod,
            deserializer: PayloadDeserializer(),
            serializer: PayloadSerializer()
        ) { request, _ in
            var iterator = request.messages.makeAsyncIterator()
            guard case .promptRequest(let prompt)? = try await iterator.next() else {
                throw RPCError(code: .invalidArgument, message: "expected prompt_request")
            }
            return StreamingServerResponse(of: Payload.self) { writer in
                let turnStart = nowNanos()
                let turnID = "t-1"
                try await writer.write(.promptEvent(.accepted(TurnAccepted(turnID: turnID, queuePosition: 0))))
                try await writer.write(.promptEvent(.started(turnID: turnID)))
                // The echo backend's tokens: a word plus its trailing space.
                var sequence: UInt64 = 0
                var bytes: UInt64 = 0
                let utf8 = Array(prompt.prompt.utf8)
                var start = 0
                var index = 0
                while index < utf8.count {
                    if utf8[index] == 0x20, index + 1 == utf8.count || utf8[index + 1] != 0x20 {
                        sequence += 1
                        let data = Array(utf8[start...index])
                        bytes += UInt64(data.count)
                        try await writer.write(.promptEvent(.output(OutputChunk(sequence: sequence, data: data))))
                        start = index + 1
                    }
                    index += 1
                }
                if start < utf8.count {
                    sequence += 1
                    let data = Array(utf8[start...])
                    bytes += UInt64(data.count)
                    try await writer.write(.promptEvent(.output(OutputChunk(sequence: sequence, data: data))))
                }
                let finished = TurnFinished(
                    turnID: turnID, stopReason: "end_turn", chunks: sequence, bytes: bytes,
                    durationMs: (nowNanos() - turnStart) / 1_000_000)
                try await writer.write(.promptEvent(.finished(finished)))
                return [:]
            }
        }
    }
}

func serve() async throws {
    unlink(socketPath)
    let server = GRPCServer(
        transport: .http2NIOPosix(
            address: .unixDomainSocket(path: socketPath),
            transportSecurity: .plaintext
        ),
        services: [PeerService()]
    )
    try await server.serve()
}

// MARK: - clients

func withPeerClient<R: Sendable>(_ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R) async throws -> R {
    try await withGRPCClient(
        transport: .http2NIOPosix(target: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext)
    ) { client in
        try await body(client)
    }
}

func statusCall(_ client: GRPCClient<HTTP2ClientTransport.Posix>) async throws {
    let payload = try await client.unary(
        request: ClientRequest(message: Payload.serverStatusRequest(ServerStatusRequest())),
        descriptor: statusMethod,
        serializer: PayloadSerializer(),
        deserializer: PayloadDeserializer(),
        options: .defaults
    ) { response in try response.message }
    guard case .serverStatus = payload else { fail("unexpected status response") }
}

func unary() async throws {
    let calls = options.int("calls", 20_000)
    let concurrency = max(1, options.int("concurrency", 1))
    let warmup = options.int("warmup", 2_000)
    try await withPeerClient { client in
        for _ in 0..<warmup { try await statusCall(client) }
        let perTask = calls / concurrency
        let begin = nowNanos()
        let samples = try await withThrowingTaskGroup(of: Samples.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var samples = Samples(capacity: perTask)
                    for _ in 0..<perTask {
                        let t0 = nowNanos()
                        try await statusCall(client)
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

func stream() async throws {
    let chunks = options.int("chunks", 100_000)
    let repeats = max(1, options.int("repeat", 1))
    let prompt = promptOf32ByteWords(chunks)
    try await withPeerClient { client in
        func run(_ text: String) async throws -> (count: Int, bytes: Int, first: UInt64) {
            try await client.serverStreaming(
                request: ClientRequest(message: Payload.promptRequest(PromptRequest(sessionID: "s", prompt: text))),
                descriptor: promptMethod,
                serializer: PayloadSerializer(),
                deserializer: PayloadDeserializer(),
                options: .defaults
            ) { response in
                var count = 0
                var bytes = 0
                var first: UInt64 = 0
                for try await payload in response.messages {
                    if case .promptEvent(.output(let chunk)) = payload {
                        if count == 0 { first = nowNanos() }
                        count += 1
                        bytes += chunk.data.count
                    }
                }
                return (count, bytes, first)
            }
        }
        _ = try await run(promptOf32ByteWords(1_000))
        for _ in 0..<repeats {
            let begin = nowNanos()
            let result = try await run(prompt)
            let end = nowNanos()
            guard result.count == chunks, result.bytes == chunks * 32 else {
                fail("stream: expected \(chunks) chunks of 32 bytes, got \(result.count) chunks, \(result.bytes) bytes")
            }
            let seconds = Double(end - begin) / 1e9
            emitResult("stream", [
                "chunks": Double(result.count),
                "chunks_per_s": Double(result.count) / seconds,
                "mb_per_s": Double(result.bytes) / seconds / 1e6,
                "first_chunk_ms": Double(result.first - begin) / 1e6,
                "steady_chunks_per_s": Double(result.count - 1) / (Double(end - result.first) / 1e9),
            ])
        }
    }
}

/// Waits until the peer answers a status call.
func waitReady() async -> Int32 {
    let begin = nowNanos()
    while nowNanos() - begin < 20_000_000_000 {
        if access(socketPath, F_OK) == 0 {
            do {
                try await withPeerClient { client in try await statusCall(client) }
                return 0
            } catch {}
        }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return 1
}

switch options.command {
case "serve": try await serve()
case "unary": try await unary()
case "stream": try await stream()
case "wait": exit(await waitReady())
default:
    printError("usage: grpc-peer serve|unary|stream|wait --socket PATH [--nio-executor] ...")
    exit(64)
}
