/// The 4-byte big-endian unsigned length that precedes every frame on the stream.
public enum FrameLength {
    public static let prefixSize = 4

    /// Reads the big-endian length from the first 4 bytes (precondition: count >= 4).
    public static func read(from bytes: UnsafeRawBufferPointer) -> UInt32 {
        precondition(bytes.count >= prefixSize, "a frame length needs \(prefixSize) bytes, got \(bytes.count)")
        return UInt32(bigEndian: bytes.loadUnaligned(as: UInt32.self))
    }

    /// Throws `RESOURCE_EXHAUSTED` "frame of N bytes exceeds the maximum of M bytes"
    /// when `length > maximum`. Call it before any buffer for the body is allocated.
    public static func validate(_ length: UInt32, maximum: UInt32) throws(SwitchboardError) {
        guard length <= maximum else {
            throw SwitchboardError(
                code: .resourceExhausted,
                message: "frame of \(length) bytes exceeds the maximum of \(maximum) bytes"
            )
        }
    }

    /// Writes `length` big-endian into the first 4 bytes (precondition: count >= 4).
    public static func write(_ length: UInt32, to bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= prefixSize, "a frame length needs \(prefixSize) bytes, got \(bytes.count)")
        bytes.storeBytes(of: length.bigEndian, as: UInt32.self)
    }
}
