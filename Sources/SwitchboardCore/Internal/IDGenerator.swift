import Synchronization

/// Session and turn identifiers.
///
/// - Session ids chosen by the server are `s-` followed by 12 random lowercase hex
///   digits; the registry retries on the (unlikely) collision with a live id.
/// - Turn ids are `t-` followed by 12 lowercase hex digits of a process-wide 48-bit
///   counter that starts at a random value. They are therefore unique across all
///   sessions of one server process (for 2^48 turns) and not guessable from a
///   session id, without any lookup.
/// - Client-chosen session ids must match `[A-Za-z0-9._-]{1,128}`.
enum IDGenerator {
    private static let turnCounter = Atomic<UInt64>(UInt64.random(in: 0..<(1 << 48)))

    static func sessionID() -> String {
        "s-" + hex12(UInt64.random(in: 0..<(1 << 48)))
    }

    static func turnID() -> String {
        let value = turnCounter.wrappingAdd(1, ordering: .relaxed).oldValue
        return "t-" + hex12(value & ((1 << 48) - 1))
    }

    static func isValidClientSessionID(_ id: String) -> Bool {
        let bytes = id.utf8
        guard (1...128).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }

    private static func hex12(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }
}
