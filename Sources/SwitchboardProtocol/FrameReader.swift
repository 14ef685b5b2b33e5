/// Incremental, allocation-bounded decoder of length-prefixed frames for byte
/// streams outside NIO (raw-socket tests, simple clients): append bytes as they
/// arrive, pull frames while ``next()`` returns one.
///
/// The length prefix is validated as soon as its 4 bytes are there, before any
/// byte of the body is waited for, and the reader never reserves memory for an
/// announced length: it holds only the bytes it was given and has not consumed.
///
/// Errors: an oversized prefix throws `RESOURCE_EXHAUSTED` and keeps throwing
/// (the stream cannot be resynchronised); a complete frame that does not decode
/// throws `INVALID_ARGUMENT` and is consumed, so the next call reads on after it.
public struct FrameReader: Sendable {
    public let maximumFrameSize: UInt32
    private var buffer: [UInt8] = []
    private var readIndex = 0

    /// Consumed bytes are dropped from the front of the buffer once they are at
    /// least this many and at least half of it.
    private static let compactionThreshold = 4096
    /// An emptied buffer keeps its capacity only up to this size.
    private static let retainedCapacity = 64 * 1024

    public init(maximumFrameSize: UInt32 = ProtocolVersion.defaultMaxFrameSize) {
        self.maximumFrameSize = maximumFrameSize
    }

    /// Bytes appended but not yet consumed as frames.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or nil when more bytes are needed.
    public mutating func next() throws(SwitchboardError) -> Frame? {
        let start = readIndex
        guard buffer.count - start >= FrameLength.prefixSize else { return nil }
        let length = buffer.withUnsafeBytes { raw in
            FrameLength.read(from: UnsafeRawBufferPointer(rebasing: raw[start..<(start + FrameLength.prefixSize)]))
        }
        try FrameLength.validate(length, maximum: maximumFrameSize)
        let bodyStart = start + FrameLength.prefixSize
        let bodyEnd = bodyStart + Int(length)
        guard buffer.count >= bodyEnd else { return nil }

        let result = buffer.withUnsafeBytes { raw in
            Result { () throws(SwitchboardError) in
                try Frame(serializedBytes: UnsafeRawBufferPointer(rebasing: raw[bodyStart..<bodyEnd]))
            }
        }
        readIndex = bodyEnd
        compact()
        return try result.get()
    }

    private mutating func compact() {
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= Self.retainedCapacity)
            readIndex = 0
        } else if readIndex >= Self.compactionThreshold, readIndex * 2 >= buffer.count {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }
}
