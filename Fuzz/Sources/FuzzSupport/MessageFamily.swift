/// A group of protobuf messages fuzzed by one binary, one decoder each.
///
/// Input layout: the first byte picks the member (and, for payloads, the envelope
/// carrying it); the remaining bytes are fed to libprotobuf-c as that member's
/// serialized message, wrapped in the fields that lead to it from a `Frame`. So
/// each decoder is hit directly while the decoding still runs through the public
/// `Frame(serializedBytes:)`, exactly as on a connection.
public struct MessageFamily: Sendable {
    /// One fuzzed message type: its name (seed file prefix) and the path of field
    /// numbers from `Frame` down to it, outermost first. An empty path is the
    /// `Frame` itself.
    public struct Member: Sendable {
        public let name: String
        let path: [UInt32]
    }

    /// Where a `Payload` sits in each envelope that carries one:
    /// CallMessage (Frame.message = 5, .payload = 1), CallStart (4, 4), CallEnd (8, 3).
    static let payloadEnvelopes: [[UInt32]] = [[5, 1], [4, 4], [8, 3]]

    public let members: [Member]
    /// Payload members are tried in every envelope; frame members have their own paths.
    let carriedInPayload: Bool

    /// Frame and each message of its `kind` oneof.
    public static let frame = MessageFamily(
        members: [
            Member(name: "frame", path: []),
            Member(name: "hello", path: [2]),
            Member(name: "welcome", path: [3]),
            Member(name: "call_start", path: [4]),
            Member(name: "call_message", path: [5]),
            Member(name: "half_close", path: [6]),
            Member(name: "cancel", path: [7]),
            Member(name: "call_end", path: [8]),
            Member(name: "ping", path: [9]),
            Member(name: "pong", path: [10]),
            Member(name: "go_away", path: [11]),
        ],
        carriedInPayload: false
    )

    public static let sessions = payloads([
        ("create_session_request", 1), ("get_session_request", 2), ("list_sessions_request", 3),
        ("list_sessions_response", 4), ("close_session_request", 5), ("close_session_response", 6),
        ("session", 7), ("list_turns_request", 19), ("list_turns_response", 20),
    ])

    public static let prompts = payloads([("prompt_request", 8), ("prompt_event", 9), ("attach_request", 18)])

    public static let status = payloads([
        ("server_status_request", 10), ("server_status", 11), ("session_status_request", 12),
        ("session_status", 13), ("health_check_request", 14), ("health_check_response", 15),
    ])

    public static let workers = payloads([("worker_message", 16), ("worker_command", 17)])

    private static func payloads(_ cases: [(String, UInt32)]) -> MessageFamily {
        MessageFamily(members: cases.map { Member(name: $0.0, path: [$0.1]) }, carriedInPayload: true)
    }

    /// The selector byte's member and field path from `Frame` down to the member.
    func route(selector: UInt8) -> (member: Member, path: [UInt32]) {
        let member = members[Int(selector) % members.count]
        guard carriedInPayload else { return (member, member.path) }
        let envelope = Self.payloadEnvelopes[(Int(selector) / members.count) % Self.payloadEnvelopes.count]
        return (member, envelope + member.path)
    }

    /// The `Frame` bytes for one fuzz input, or nil for an empty input.
    public func frameBody(for input: UnsafeRawBufferPointer) -> [UInt8]? {
        guard let selector = input.first else { return nil }
        var body = Array(input.dropFirst())
        for field in route(selector: selector).path.reversed() {
            body = ProtoWire.field(field, body: body)
        }
        return body
    }

    /// The fuzz input whose decoding is the member of `frameBytes` (an encoded
    /// frame) at the selector's path, or nil when the frame has no such member.
    public func seedInput(selector: UInt8, frameBytes: [UInt8]) -> [UInt8]? {
        guard let inner = ProtoWire.body(atPath: route(selector: selector).path, in: frameBytes) else { return nil }
        return [selector] + inner
    }

    /// Selectors for `member` in each envelope it is tried in.
    public func selectors(of memberName: String) -> [UInt8] {
        guard let index = members.firstIndex(where: { $0.name == memberName }) else { return [] }
        let envelopes = carriedInPayload ? Self.payloadEnvelopes.count : 1
        return (0..<envelopes).map { UInt8(index + $0 * members.count) }
    }
}
