import CProtobufC
import CSwitchboardProto

// The frame codec: a `Frame` to and from the bytes of one protobuf `Frame`
// message (libprotobuf-c does the wire work; see Internal/ for the conversion).
//
// Strings: protobuf-c carries `string` fields as C strings, so a Swift string
// with an embedded NUL is truncated at the NUL when encoded (senders check first
// with `fieldWithNUL()`). Decoding checks every string field's wire bytes and
// reports a NUL or invalid UTF-8 in `Frame.invalidString`.

extension Frame {
    /// Frames whose packed size is at most this are packed into stack memory by
    /// ``withSerializedBytes(_:)``; larger ones into one heap buffer.
    static let stackPackLimit = 4096

    /// Serialized protobuf bytes of the frame (no length prefix).
    public func serializedBytes() -> [UInt8] {
        withCFrame { frame in
            let size = switchboard__v1__frame__get_packed_size(frame)
            return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
                initialized = switchboard__v1__frame__pack(frame, buffer.baseAddress)
                precondition(initialized == size, "protobuf-c packed \(initialized) bytes, expected \(size)")
            }
        }
    }

    /// The frame with its 4-byte big-endian length prefix, ready for a socket.
    public func prefixedBytes() -> [UInt8] {
        withCFrame { frame in
            let size = switchboard__v1__frame__get_packed_size(frame)
            precondition(size <= UInt32.max, "a frame of \(size) bytes cannot be length-prefixed")
            let total = FrameLength.prefixSize + size
            return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
                let raw = UnsafeMutableRawBufferPointer(buffer)
                FrameLength.write(UInt32(size), to: raw)
                let packed = switchboard__v1__frame__pack(frame, buffer.baseAddress! + FrameLength.prefixSize)
                precondition(packed == size, "protobuf-c packed \(packed) bytes, expected \(size)")
                initialized = total
            }
        }
    }

    /// Packs the frame once into a temporary buffer and calls `body` with it (no
    /// extra copy); used by the NIO encoder. The buffer is only valid inside `body`.
    public func withSerializedBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withCFrame { frame in
            let size = switchboard__v1__frame__get_packed_size(frame)
            if size <= Self.stackPackLimit {
                return try withUnsafeTemporaryAllocation(byteCount: size, alignment: 1) { buffer in
                    try body(Self.pack(frame, into: buffer, size: size))
                }
            }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 1)
            defer { buffer.deallocate() }
            return try body(Self.pack(frame, into: buffer, size: size))
        }
    }

    private static func pack(
        _ frame: UnsafePointer<CFrame>,
        into buffer: UnsafeMutableRawBufferPointer,
        size: Int
    ) -> UnsafeRawBufferPointer {
        guard size > 0, let base = buffer.baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let packed = switchboard__v1__frame__pack(frame, base.assumingMemoryBound(to: UInt8.self))
        precondition(packed == size, "protobuf-c packed \(packed) bytes, expected \(size)")
        return UnsafeRawBufferPointer(start: base, count: size)
    }

    /// Decodes one frame body (no prefix).
    ///
    /// Bytes that are not a protobuf `Frame`, a frame without a kind (or with a
    /// kind this build does not know), or a prompt event without an event throw
    /// `INVALID_ARGUMENT` "malformed frame: ...". A call message, start or end
    /// without a payload decodes with `payload == nil`; so does a payload whose
    /// case is unset or unknown to this build. Unknown enum numbers decode as the
    /// enum's default case; unknown status codes are kept as they are. A string
    /// field holding a NUL byte or invalid UTF-8 does not throw: the frame decodes
    /// with ``invalidString`` set, so the receiver can refuse just its call.
    ///
    /// libprotobuf-c has no size limit: bound the length (``FrameLength/validate(_:maximum:)``)
    /// before the body is even buffered.
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(SwitchboardError) {
        let data = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        guard let frame = switchboard__v1__frame__unpack(nil, bytes.count, data) else {
            throw .malformedFrame("\(bytes.count) bytes are not a valid Frame message")
        }
        defer { switchboard__v1__frame__free_unpacked(frame, nil) }
        try self.init(cMessage: frame)
        invalidString = StringFieldScan.firstInvalid(inWire: bytes, frame.pointee.base.descriptor)
    }

    /// Decodes one frame body (no prefix); see ``init(serializedBytes:)-(UnsafeRawBufferPointer)``.
    public init(serializedBytes bytes: [UInt8]) throws(SwitchboardError) {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(SwitchboardError) in try Frame(serializedBytes: buffer) }
        }
        self = try result.get()
    }

    /// Builds the protobuf-c tree of the frame, valid only inside `body`.
    func withCFrame<R>(_ body: (UnsafePointer<CFrame>) throws -> R) rethrows -> R {
        // Hot path: an output chunk, the most frequent frame. Its data is borrowed,
        // not copied, and the five small structs fit the arena's stack memory.
        if case .message(let message) = kind, case .promptEvent(.output(let chunk))? = message.payload {
            return try chunk.data.withUnsafeBufferPointer { data in
                try CArena.with { arena in
                    let output = arena.message(switchboard__v1__output_chunk__init)
                    output.pointee.sequence = chunk.sequence
                    // protobuf-c only reads `data` while packing.
                    output.pointee.data = ProtobufCBinaryData(
                        len: data.count,
                        data: UnsafeMutablePointer(mutating: data.baseAddress)
                    )
                    let event = arena.message(switchboard__v1__prompt_event__init)
                    event.pointee.event_case = SWITCHBOARD__V1__PROMPT_EVENT__EVENT_OUTPUT
                    event.pointee.output = output
                    let payload = arena.message(switchboard__v1__payload__init)
                    payload.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_PROMPT_EVENT
                    payload.pointee.prompt_event = event
                    let callMessage = arena.message(switchboard__v1__call_message__init)
                    callMessage.pointee.payload = payload
                    callMessage.pointee.half_close = message.halfClose ? 1 : 0
                    let frame = arena.message(switchboard__v1__frame__init)
                    frame.pointee.call_id = callID
                    frame.pointee.kind_case = SWITCHBOARD__V1__FRAME__KIND_MESSAGE
                    frame.pointee.message = callMessage
                    return try body(frame)
                }
            }
        }
        return try CArena.with { arena in
            try body(cMessage(in: &arena))
        }
    }
}
