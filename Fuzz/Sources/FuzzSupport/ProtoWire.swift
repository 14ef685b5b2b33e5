/// Just enough of the protobuf wire format to wrap fuzz input into a `Frame`
/// envelope and to cut a nested message back out of an encoded frame (for the
/// seed corpus). Decoding proper is always left to libprotobuf-c.
public enum ProtoWire {
    /// Wire type 2: a varint length followed by that many bytes.
    static let lengthDelimited: UInt64 = 2

    public static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    /// `body` as the length-delimited field `field` (tag, length, bytes).
    public static func field(_ field: UInt32, body: some Collection<UInt8>) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(body.count + 11)
        appendVarint(UInt64(field) << 3 | lengthDelimited, to: &bytes)
        appendVarint(UInt64(body.count), to: &bytes)
        bytes.append(contentsOf: body)
        return bytes
    }

    /// The body of the last length-delimited occurrence of `field` in `message`
    /// (protobuf's "last one wins"), or nil when it is absent or `message` is not
    /// well-formed wire data.
    public static func body(ofField field: UInt32, in message: [UInt8]) -> [UInt8]? {
        var index = 0
        var found: [UInt8]?
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while index < message.count, shift < 64 {
                let byte = message[index]
                index += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while index < message.count {
            guard let tag = varint() else { return nil }
            switch tag & 7 {
            case 0:
                guard varint() != nil else { return nil }
            case 1:
                index += 8
            case 5:
                index += 4
            case 2:
                guard let length = varint(), length <= UInt64(message.count - index) else { return nil }
                let end = index + Int(length)
                if tag >> 3 == UInt64(field) { found = Array(message[index..<end]) }
                index = end
            default:
                return nil
            }
            guard index <= message.count else { return nil }
        }
        return found
    }

    /// Follows `path` (field numbers, outermost first) down from `message`.
    public static func body(atPath path: [UInt32], in message: [UInt8]) -> [UInt8]? {
        var current = message
        for field in path {
            guard let inner = body(ofField: field, in: current) else { return nil }
            current = inner
        }
        return current
    }
}
