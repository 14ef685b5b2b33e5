/// A protobuf `string` field that the protocol refuses: it holds a NUL byte or is
/// not valid UTF-8 (docs/PROTOCOL.md, "Strings").
///
/// libprotobuf-c keeps `string` fields as C strings, so a NUL would silently cut
/// the string short, and a Swift `String` would silently repair invalid UTF-8 with
/// U+FFFD; both are refused with `INVALID_ARGUMENT` instead, naming the field.
public struct InvalidStringField: Hashable, Sendable {
    public enum Problem: Hashable, Sendable {
        case nulByte
        case invalidUTF8
    }

    /// The field's path inside the request (or envelope) message, with proto field
    /// names: `session_id`, `prompt`, `labels[1].key`, `finished.stop_reason`.
    public var field: String
    public var problem: Problem

    public init(field: String, problem: Problem) {
        self.field = field
        self.problem = problem
    }

    /// `session_id contains a NUL byte`, `prompt is not valid UTF-8`.
    public var message: String {
        switch problem {
        case .nulByte: "\(field) contains a NUL byte"
        case .invalidUTF8: "\(field) is not valid UTF-8"
        }
    }

    /// The `INVALID_ARGUMENT` error a call carrying this field ends with.
    public var error: SwitchboardError {
        SwitchboardError(code: .invalidArgument, message: message)
    }

    /// The problem with `bytes` as the value of a `string` field, nil when it is
    /// valid UTF-8 without a NUL byte.
    public static func problem<Bytes: Collection<UInt8>>(in bytes: Bytes) -> Problem? {
        let result = bytes.withContiguousStorageIfAvailable { UTF8Check.problem(in: UnsafeRawBufferPointer($0)) }
        if let result { return result }
        return Array(bytes).withUnsafeBytes { UTF8Check.problem(in: $0) }
    }
}

extension Frame {
    /// The first string field of this frame holding a NUL byte, which the encoder
    /// would otherwise cut short at the NUL without a word (a Swift `String` is
    /// always valid UTF-8, so that is the only way one can be refused).
    ///
    /// Clients check a request with this before sending it, so the mistake is
    /// reported locally with the same message the server would answer.
    public func fieldWithNUL() -> InvalidStringField? {
        CArena.with { arena in
            let frame = cMessage(in: &arena)
            let withNUL = arena.stringsWithNUL
            guard !withNUL.isEmpty else { return nil }
            return StringFieldScan.field(in: UnsafeRawPointer(frame), frame.pointee.base.descriptor) { pointer in
                withNUL.contains(pointer)
            }.map { InvalidStringField(field: $0, problem: .nulByte) }
        }
    }

    /// Throws `INVALID_ARGUMENT` "FIELD contains a NUL byte" when ``fieldWithNUL()`` finds one.
    public func checkStringsBeforeSending() throws(SwitchboardError) {
        if let invalid = fieldWithNUL() { throw invalid.error }
    }
}
