import Foundation
import Synchronization
import SwitchboardClient
import SwitchboardProtocol
import Testing

/// A small seeded generator (SplitMix64), so a failing run can be replayed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The complete frames in `bytes` (length-prefixed), ignoring a partial last one.
func completeFrames(_ bytes: [UInt8]) throws -> [Frame] {
    var frames: [Frame] = []
    var position = 0
    while position + 4 <= bytes.count {
        let length = Int(bytes[position]) << 24 | Int(bytes[position + 1]) << 16 | Int(bytes[position + 2]) << 8 | Int(bytes[position + 3])
        guard position + 4 + length <= bytes.count else { break }
        frames.append(try Frame(serializedBytes: Array(bytes[(position + 4)..<(position + 4 + length)])))
        position += 4 + length
    }
    return frames
}

extension Frame {
    var promptEvent: PromptEvent? {
        if case .message(let message) = kind, case .promptEvent(let event)? = message.payload { return event }
        return nil
    }
}

/// Counts re-attaches and remembers the states the server reported.
final class ReattachLog: Sendable {
    private let attached = Mutex<[TurnAttached]>([])
    var all: [TurnAttached] { attached.withLockAnnotated { $0 } }
    func record(_ event: TurnAttached) { attached.withLockAnnotated { $0.append(event) } }
}

/// How one prompt through the cutting proxy ended.
enum CutOutcome {
    case connectFailed(SwitchboardError)
    case streamFailed(SwitchboardError, [PromptEvent])
    case completed([PromptEvent])
}

/// Sends `prompt` through `proxy` with auto re-attach and collects what the caller sees.
func promptThroughProxy(
    _ proxy: CuttingProxy,
    sessionID: String,
    prompt: String,
    log: ReattachLog,
    configure: (inout RetryPolicy) -> Void = { _ in }
) async -> CutOutcome {
    var configuration = ClientConfiguration()
    configuration.clientName = "client-tests-reattach"
    var policy = RetryPolicy()
    policy.initialBackoff = .milliseconds(5)
    policy.maxBackoff = .milliseconds(50)
    configure(&policy)
    configuration.resume = .reattach(policy)
    let client: SwitchboardClient
    do {
        client = try await SwitchboardClient.connect(socketPath: proxy.socketPath, configuration: configuration)
    } catch let error as SwitchboardError {
        return .connectFailed(error)
    } catch {
        return .connectFailed(SwitchboardError(code: .unknown, message: "\(error)"))
    }
    var events: [PromptEvent] = []
    do {
        for try await event in client.prompt(sessionID: sessionID, prompt, onReattach: { log.record($0) }) {
            events.append(event)
        }
        await client.close()
        return .completed(events)
    } catch {
        // The stream's failure is typed: a SwitchboardError.
        await client.close()
        return .streamFailed(error, events)
    }
}

@Suite("Re-attach after a cut connection", .timeLimit(.minutes(2 * TestTimeScale.hangGuardMinutes)))
struct ReattachTests {
    static let tokens = 200
    /// Frames from the server on the prompt's connection: Welcome, accepted, started,
    /// one per token, finished, CallEnd.
    static var lastFrame: Int { tokens + 4 }

    /// Cut points every run covers, before the random ones.
    static let forced: [CutPoint] = [
        CutPoint(frame: 0, offsetSelector: 0),  // nothing at all: the handshake fails
        CutPoint(frame: 0, offsetSelector: 7),  // inside Welcome
        CutPoint(frame: 1, offsetSelector: 0),  // after Welcome, before accepted
        CutPoint(frame: 1, offsetSelector: 5),  // inside accepted
        CutPoint(frame: 2, offsetSelector: 0),  // right after accepted
        CutPoint(frame: 2, offsetSelector: 3),  // inside started
        CutPoint(frame: 3, offsetSelector: 0),  // before the first chunk
        CutPoint(frame: 3, offsetSelector: 2),  // inside the first chunk's length prefix
        CutPoint(frame: tokens + 2, offsetSelector: 9),  // inside the last chunk
        CutPoint(frame: tokens + 3, offsetSelector: 0),  // after the last chunk, before finished
        CutPoint(frame: tokens + 3, offsetSelector: 11),  // inside finished
        CutPoint(frame: tokens + 4, offsetSelector: 0),  // after finished, before CallEnd
        CutPoint(frame: tokens + 4, offsetSelector: 3),  // inside CallEnd
    ]

    @Test("a prompt cut at 100 random points re-attaches and assembles exactly the turn's output")
    func hundredCutPoints() async throws {
        let seed = ProcessInfo.processInfo.environment["SWITCHBOARD_CUT_SEED"].flatMap { UInt64($0) }
            ?? UInt64.random(in: 0...UInt64.max)
        print("ReattachTests: cut-point seed \(seed) (SWITCHBOARD_CUT_SEED=\(seed) replays this run)")
        var random = SplitMix64(seed: seed)
        let prompt = words(Self.tokens)
        var tally: [String: Int] = [:]

        // A small token delay keeps most turns running while the client re-attaches,
        // so both paths are taken: following a live turn and replaying a finished one.
        try await withTestServer(echoDelay: .microseconds(200)) { server in
            try await server.withClient { direct in
                for iteration in 0..<100 {
                    let cut: CutPoint
                    if iteration < Self.forced.count {
                        cut = Self.forced[iteration]
                    } else {
                        let frame = Int(random.next() % UInt64(Self.lastFrame + 1))
                        cut = CutPoint(frame: frame, offsetSelector: random.next() % 4 == 0 ? 0 : random.next())
                    }
                    let session = try await direct.createSession()
                    let proxy = try CuttingProxy(target: server.socketPath, cutFirstConnectionAt: cut)
                    defer { proxy.stop() }
                    let log = ReattachLog()
                    let outcome = await promptThroughProxy(proxy, sessionID: session.id, prompt: prompt, log: log)
                    let report = try await proxy.firstConnectionReport()
                    let context = "iteration \(iteration), seed \(seed), \(cut), offset \(report.offset) of \(report.frameSize)"
                    #expect(report.cut, "the cut point was never reached: \(context)")

                    let frames = try completeFrames(report.delivered)
                    let acceptedDelivered = frames.contains { if case .accepted? = $0.promptEvent { true } else { false } }
                    tally[report.offset == 0 ? "at a frame boundary" : "inside a frame", default: 0] += 1

                    if frames.isEmpty {
                        tally["during the handshake", default: 0] += 1
                        guard case .connectFailed(let error) = outcome else {
                            Issue.record("a cut handshake must fail the connect: \(outcome), \(context)")
                            continue
                        }
                        #expect(error.code == .unavailable, "\(context)")
                        let status = try await direct.sessionStatus(id: session.id)
                        #expect(status.turns.isEmpty, "no prompt may be sent: \(context)")
                    } else if !acceptedDelivered {
                        tally["before accepted arrived", default: 0] += 1
                        guard case .streamFailed(let error, let events) = outcome else {
                            Issue.record("a prompt cut before accepted must fail: \(outcome), \(context)")
                            continue
                        }
                        #expect(error.code == .unavailable, "\(error), \(context)")
                        #expect(error.message.contains("not sent again"), "\(error), \(context)")
                        #expect(events.isEmpty, "\(context)")
                        #expect(proxy.connections == 1, "nothing may be re-sent, not even a connection: \(context)")
                        // The server got the prompt once and runs it to its end.
                        let finished = try await eventually {
                            let turns = try await direct.sessionStatus(id: session.id).turns
                            return turns.count == 1 && turns[0].state == .finished
                        }
                        #expect(finished, "the session must hold exactly the one turn: \(context)")
                    } else {
                        let allChunksDelivered = frames.filter { if case .output? = $0.promptEvent { true } else { false } }.count == Self.tokens
                        if allChunksDelivered { tally["after the last chunk", default: 0] += 1 }
                        guard case .completed(let events) = outcome else {
                            Issue.record("a prompt cut after accepted must re-attach and complete: \(outcome), \(context)")
                            continue
                        }
                        // Exactly the turn: accepted, started, output 1…n, finished, and
                        // the bytes equal the full output (no gap, no duplicate).
                        expectCompleteTurn(events, prompt: prompt)
                        #expect(events.outputChunks.map(\.sequence) == Array(1...UInt64(Self.tokens)), "\(context)")
                        #expect(events.outputChunks.flatMap(\.data) == Array(prompt.utf8), "\(context)")
                        let reattaches = log.all
                        #expect(!reattaches.isEmpty, "the stream must have re-attached: \(context)")
                        #expect(proxy.connections >= 2, "\(context)")
                        for attached in reattaches {
                            tally[attached.state == .finished ? "re-attached to a finished turn" : "re-attached to a live turn", default: 0] += 1
                        }
                        let status = try await direct.sessionStatus(id: session.id)
                        #expect(status.turns.count == 1, "the prompt must not be re-sent: \(context)")
                    }
                }
            }
        }
        print("ReattachTests: cut points covered: \(tally.sorted { $0.key < $1.key })")
        for category in [
            "during the handshake", "before accepted arrived", "after the last chunk",
            "at a frame boundary", "inside a frame", "re-attached to a live turn",
        ] {
            #expect(tally[category, default: 0] > 0, "no cut point fell \(category) (seed \(seed))")
        }
    }
}
