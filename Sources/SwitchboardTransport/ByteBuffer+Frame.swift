import NIOCore
import SwitchboardProtocol

extension ByteBuffer {
    /// Appends `frame` with its 4-byte big-endian length prefix in one pass:
    /// the prefix is reserved, the frame is packed straight after it and the
    /// prefix is then patched with the body size, so the body is never copied
    /// through an intermediate array.
    ///
    /// - Returns: the number of bytes written (prefix + body).
    @discardableResult
    public mutating func writeFrame(_ frame: Frame) -> Int {
        let prefixIndex = self.writerIndex
        self.writeInteger(UInt32(0))
        let bodySize = frame.withSerializedBytes { body in
            self.writeBytes(body)
        }
        precondition(bodySize <= Int(UInt32.max), "a frame of \(bodySize) bytes cannot be length-prefixed")
        self.setInteger(UInt32(truncatingIfNeeded: bodySize), at: prefixIndex)
        return FrameLength.prefixSize + bodySize
    }
}
