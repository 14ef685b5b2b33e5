import CProtobufC

typealias CMessageDescriptor = ProtobufCMessageDescriptor
typealias CFieldDescriptor = ProtobufCFieldDescriptor

/// Finds refused `string` fields (NUL byte, invalid UTF-8) by walking a message
/// with the descriptors protoc-c generated, so every string field of the schema is
/// covered, new ones included, without a list to keep in step.
///
/// Two walks: ``firstInvalid(inWire:_:)`` reads a received message's wire bytes,
/// where a string's true length still is (libprotobuf-c's unpacked C string ends
/// at the first NUL); ``field(in:_:where:)`` walks a protobuf-c struct tree built
/// for sending, to name the field that holds a given string.
///
/// Field paths use proto field names relative to the request (or envelope)
/// message: the frame's kind, the call's payload and the payload's body add no
/// component (`session_id`, not `start.payload.create_session_request.session_id`).
enum StringFieldScan {
    // MARK: Wire bytes

    /// The first refused string field in `bytes`, a serialized message of type
    /// `descriptor`. Call it only on bytes libprotobuf-c unpacked successfully:
    /// it stops, finding nothing, at anything that is not well-formed.
    static func firstInvalid(
        inWire bytes: UnsafeRawBufferPointer,
        _ descriptor: UnsafePointer<CMessageDescriptor>
    ) -> InvalidStringField? {
        var reader = WireReader(bytes: bytes)
        var repeatedSeen: [(number: UInt32, count: Int)] = []
        while !reader.isAtEnd {
            guard let key = reader.varint(), let number = UInt32(exactly: key >> 3) else { return nil }
            switch key & 7 {
            case 0:
                guard reader.varint() != nil else { return nil }
            case 1:
                guard reader.skip(8) else { return nil }
            case 5:
                guard reader.skip(4) else { return nil }
            case 2:
                guard let length = reader.varint(), let value = reader.take(length) else { return nil }
                guard let field = protobuf_c_message_descriptor_get_field(descriptor, number) else { continue }
                let index = field.pointee.label == PROTOBUF_C_LABEL_REPEATED
                    ? nextIndex(of: number, in: &repeatedSeen) : nil
                if field.pointee.type == PROTOBUF_C_TYPE_STRING {
                    if let problem = UTF8Check.problem(in: value) {
                        return InvalidStringField(field: leafName(field, index), problem: problem)
                    }
                } else if field.pointee.type == PROTOBUF_C_TYPE_MESSAGE, let child = messageDescriptor(of: field) {
                    if var invalid = firstInvalid(inWire: value, child) {
                        invalid.field = join(component(descriptor, field, index), invalid.field)
                        return invalid
                    }
                }
            default:
                // Groups (3, 4) and wire types 6, 7: libprotobuf-c refuses them on unpack.
                return nil
            }
        }
        return nil
    }

    private static func nextIndex(of number: UInt32, in seen: inout [(number: UInt32, count: Int)]) -> Int {
        if let slot = seen.firstIndex(where: { $0.number == number }) {
            seen[slot].count += 1
            return seen[slot].count - 1
        }
        seen.append((number, 1))
        return 0
    }

    // MARK: protobuf-c struct trees

    /// The path of the first string field of `message` (of type `descriptor`) whose
    /// C string pointer `matches`.
    static func field(
        in message: UnsafeRawPointer,
        _ descriptor: UnsafePointer<CMessageDescriptor>,
        where matches: (UnsafeRawPointer) -> Bool
    ) -> String? {
        let fields = descriptor.pointee.fields!
        for position in 0..<Int(descriptor.pointee.n_fields) {
            let field = fields + position
            let type = field.pointee.type
            guard type == PROTOBUF_C_TYPE_STRING || type == PROTOBUF_C_TYPE_MESSAGE else { continue }
            if field.pointee.flags & PROTOBUF_C_FIELD_FLAG_ONEOF.rawValue != 0 {
                let setCase = message.load(fromByteOffset: Int(field.pointee.quantifier_offset), as: UInt32.self)
                guard setCase == field.pointee.id else { continue }
            }
            func visit(_ value: UnsafeRawPointer?, index: Int?) -> String? {
                guard let value else { return nil }
                if type == PROTOBUF_C_TYPE_STRING {
                    return matches(value) ? leafName(field, index) : nil
                }
                guard let child = messageDescriptor(of: field),
                      let path = self.field(in: value, child, where: matches) else { return nil }
                return join(component(descriptor, field, index), path)
            }
            let slot = message + Int(field.pointee.offset)
            if field.pointee.label == PROTOBUF_C_LABEL_REPEATED {
                let count = message.load(fromByteOffset: Int(field.pointee.quantifier_offset), as: Int.self)
                guard count > 0, let array = slot.load(as: UnsafeRawPointer?.self) else { continue }
                for index in 0..<count {
                    let element = array.load(fromByteOffset: index * MemoryLayout<UnsafeRawPointer?>.stride, as: UnsafeRawPointer?.self)
                    if let path = visit(element, index: index) { return path }
                }
            } else if let path = visit(slot.load(as: UnsafeRawPointer?.self), index: nil) {
                return path
            }
        }
        return nil
    }

    // MARK: Paths

    private static func messageDescriptor(of field: UnsafePointer<CFieldDescriptor>) -> UnsafePointer<CMessageDescriptor>? {
        field.pointee.descriptor?.assumingMemoryBound(to: CMessageDescriptor.self)
    }

    private static func leafName(_ field: UnsafePointer<CFieldDescriptor>, _ index: Int?) -> String {
        let name = String(cString: field.pointee.name)
        return index.map { "\(name)[\($0)]" } ?? name
    }

    /// The path component a message field adds, nil for the envelope: the fields of
    /// `Frame` and `Payload` (kind, body) and a field holding a `Payload`.
    private static func component(
        _ parent: UnsafePointer<CMessageDescriptor>,
        _ field: UnsafePointer<CFieldDescriptor>,
        _ index: Int?
    ) -> String? {
        if isEnvelope(parent) { return nil }
        if let child = messageDescriptor(of: field), isEnvelope(child) { return nil }
        return leafName(field, index)
    }

    private static func isEnvelope(_ descriptor: UnsafePointer<CMessageDescriptor>) -> Bool {
        let name = descriptor.pointee.short_name.map { String(cString: $0) }
        return name == "Frame" || name == "Payload"
    }

    private static func join(_ component: String?, _ path: String) -> String {
        component.map { "\($0).\(path)" } ?? path
    }
}

/// Reads the protobuf wire format (varints, fixed and length-delimited fields).
private struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var isAtEnd: Bool { offset >= bytes.count }

    mutating func varint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count, shift < 64 {
            let byte = bytes[offset]
            offset += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        return nil
    }

    mutating func skip(_ count: Int) -> Bool {
        guard bytes.count - offset >= count else { return false }
        offset += count
        return true
    }

    mutating func take(_ length: UInt64) -> UnsafeRawBufferPointer? {
        guard length <= UInt64(bytes.count - offset) else { return nil }
        let start = offset
        offset += Int(length)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
    }
}

/// The checks a `string` field's bytes must pass: no NUL byte, valid UTF-8
/// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
enum UTF8Check {
    /// nil when valid; a NUL anywhere is reported as `.nulByte`, even in a string
    /// that is also not valid UTF-8 (every client reports the same).
    static func problem(in bytes: UnsafeRawBufferPointer) -> InvalidStringField.Problem? {
        let count = bytes.count
        var index = 0
        while index < count {
            // Eight ASCII bytes at a time: no high bit set, then look for a zero byte.
            if count - index >= 8 {
                let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if word & 0x8080_8080_8080_8080 == 0 {
                    if (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080 != 0 { return .nulByte }
                    index += 8
                    continue
                }
            }
            let lead = bytes[index]
            if lead < 0x80 {
                if lead == 0 { return .nulByte }
                index += 1
                continue
            }
            let length: Int
            var second: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; second = 0xA0...0xBF
            case 0xED: length = 3; second = 0x80...0x9F
            case 0xE1...0xEF: length = 3
            case 0xF0: length = 4; second = 0x90...0xBF
            case 0xF4: length = 4; second = 0x80...0x8F
            case 0xF1...0xF3: length = 4
            default: return invalid(bytes, from: index)
            }
            guard count - index >= length, second.contains(bytes[index + 1]) else { return invalid(bytes, from: index) }
            for offset in 2..<length where !(0x80...0xBF).contains(bytes[index + offset]) {
                return invalid(bytes, from: index)
            }
            index += length
        }
        return nil
    }

    private static func invalid(_ bytes: UnsafeRawBufferPointer, from index: Int) -> InvalidStringField.Problem {
        bytes[index...].contains(0) ? .nulByte : .invalidUTF8
    }
}
