import NIOCore
import SwitchboardProtocol

/// Splits a byte stream into ``Frame``s: 4-byte big-endian length, then that many
/// bytes of a protobuf `Frame`.
///
/// The length is checked against ``maximumFrameSize`` as soon as its 4 bytes are
/// there, *before* any byte of the body is waited for, so a hostile prefix (say
/// 4 GiB) fails at once with `RESOURCE_EXHAUSTED` instead of making the channel
/// buffer grow towards it. The body is decoded in place from the buffer's readable
/// bytes (no copy). Every error is a ``SwitchboardError``; after one the stream
/// cannot be resynchronised and the owner should close the connection.
public struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = Frame

    /// Largest accepted frame body, in bytes (the prefix is not counted).
    public let maximumFrameSize: UInt32
    /// Largest accepted *first* frame (nil: `maximumFrameSize`). A server sets it
    /// small, because the first frame must be a Hello: a peer that has not
    /// finished the handshake then cannot make it buffer more than this.
    public let maximumFirstFrameSize: UInt32?
    private var decodedFirstFrame = false

    public init(maximumFrameSize: UInt32 = ProtocolVersion.defaultMaxFrameSize, maximumFirstFrameSize: UInt32? = nil) {
        self.maximumFrameSize = maximumFrameSize
        self.maximumFirstFrameSize = maximumFirstFrameSize.map { min($0, maximumFrameSize) }
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> Frame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else {
            return nil
        }
        if !decodedFirstFrame, let firstLimit = maximumFirstFrameSize, length > firstLimit {
            throw SwitchboardError(
                code: .resourceExhausted,
                message: "first frame of \(length) bytes exceeds the maximum of \(firstLimit) bytes before the handshake"
            )
        }
        try FrameLength.validate(length, maximum: self.maximumFrameSize)
        let bodyLength = Int(length)
        guard buffer.readableBytes - FrameLength.prefixSize >= bodyLength else {
            return nil
        }
        let frame = try buffer.withUnsafeReadableBytes { bytes throws(SwitchboardError) in
            let body = UnsafeRawBufferPointer(
                rebasing: bytes[FrameLength.prefixSize..<(FrameLength.prefixSize + bodyLength)]
            )
            return try Frame(serializedBytes: body)
        }
        buffer.moveReaderIndex(forwardBy: FrameLength.prefixSize + bodyLength)
        decodedFirstFrame = true
        return frame
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Frame? {
        if let frame = try self.decode(buffer: &buffer) {
            return frame
        }
        // The peer went away in the middle of a frame: say so instead of dropping
        // the partial bytes silently (the connection is gone either way).
        if seenEOF, buffer.readableBytes > 0 {
            let partial = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: partial)
            throw SwitchboardError(
                code: .invalidArgument,
                message: "connection closed in the middle of a frame (\(partial) bytes buffered)"
            )
        }
        return nil
    }
}
