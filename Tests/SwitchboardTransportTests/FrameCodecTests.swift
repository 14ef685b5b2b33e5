import NIOCore
import NIOEmbedded
import NIOTestUtils
import SwitchboardProtocol
import SwitchboardTransport
import Testing

@Suite("Frame decoder and encoder")
struct FrameCodecTests {
    static let sampleFrames: [Frame] = [
        Frame(kind: .hello(Hello(clientName: "tests"))),
        Frame(callID: 1, kind: .start(CallStart(
            method: MethodName.prompt,
            timeoutMs: 1500,
            payload: .promptRequest(PromptRequest(sessionID: "s1", prompt: "hello world")),
            halfClose: true
        ))),
        Frame(callID: 1, kind: .message(CallMessage(payload: .promptEvent(.output(
            OutputChunk(sequence: 7, data: Array(repeating: 0x61, count: 3000))
        ))))),
        Frame(callID: 2, kind: .cancel(reason: "bored")),
        Frame(kind: .ping(nonce: 42)),
        Frame(kind: .goAway(GoAway(lastCallID: 9, code: .ok, message: "draining"))),
    ]

    static func buffer(_ frame: Frame) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        buffer.writeFrame(frame)
        return buffer
    }

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        ByteBufferAllocator().buffer(bytes: bytes)
    }

    static func makeChannel(maximum: UInt32 = ProtocolVersion.defaultMaxFrameSize) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(FrameDecoder(maximumFrameSize: maximum))
        )
        return channel
    }

    @Test func verifierSplitsAndJoinsFrames() throws {
        let pairs = Self.sampleFrames.map { (Self.buffer($0), [$0]) }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) {
            FrameDecoder()
        }
    }

    @Test func writeFrameMatchesPrefixedBytes() {
        for frame in Self.sampleFrames {
            let buffer = Self.buffer(frame)
            #expect(Array(buffer.readableBytesView) == frame.prefixedBytes())
        }
    }

    @Test func severalFramesInOneRead() throws {
        let channel = try Self.makeChannel()
        var all = ByteBufferAllocator().buffer(capacity: 0)
        for frame in Self.sampleFrames { all.writeFrame(frame) }
        try channel.writeInbound(all)
        for frame in Self.sampleFrames {
            #expect(try channel.readInbound(as: Frame.self) == frame)
        }
        #expect(try channel.readInbound(as: Frame.self) == nil)
        #expect(try channel.finish().isClean)
    }

    @Test func frameSplitInsidePrefixAndBody() throws {
        let channel = try Self.makeChannel()
        let bytes = Self.sampleFrames[2].prefixedBytes()
        try channel.writeInbound(Self.buffer(Array(bytes[0..<2])))
        #expect(try channel.readInbound(as: Frame.self) == nil)
        try channel.writeInbound(Self.buffer(Array(bytes[2..<100])))
        #expect(try channel.readInbound(as: Frame.self) == nil)
        // The rest of the frame plus the first byte of the next one.
        let next = Self.sampleFrames[4].prefixedBytes()
        try channel.writeInbound(Self.buffer(Array(bytes[100...]) + [next[0]]))
        #expect(try channel.readInbound(as: Frame.self) == Self.sampleFrames[2])
        #expect(try channel.readInbound(as: Frame.self) == nil)
        try channel.writeInbound(Self.buffer(Array(next[1...])))
        #expect(try channel.readInbound(as: Frame.self) == Self.sampleFrames[4])
        #expect(try channel.finish().isClean)
    }

    @Test func oversizedPrefixFailsBeforeAnyBody() throws {
        let channel = try Self.makeChannel()
        // Only the prefix of a 4 GiB frame: the error must come now, not after
        // buffering (or waiting for) the announced body.
        let error = #expect(throws: SwitchboardError.self) {
            try channel.writeInbound(Self.buffer([0xFF, 0xFF, 0xFF, 0xFF]))
        }
        #expect(error?.code == .resourceExhausted)
        #expect(error?.message == "frame of 4294967295 bytes exceeds the maximum of 4194304 bytes")
        _ = try? channel.finish()
    }

    @Test func prefixAtTheMaximumIsAccepted() throws {
        let frame = Frame(kind: .ping(nonce: 1))
        let size = UInt32(frame.serializedBytes().count)
        let channel = try Self.makeChannel(maximum: size)
        try channel.writeInbound(Self.buffer(frame))
        #expect(try channel.readInbound(as: Frame.self) == frame)

        let tooSmall = try Self.makeChannel(maximum: size - 1)
        let error = #expect(throws: SwitchboardError.self) {
            try tooSmall.writeInbound(Self.buffer(frame))
        }
        #expect(error?.code == .resourceExhausted)
        _ = try? tooSmall.finish()
    }

    @Test func garbageBodyIsRejected() throws {
        let channel = try Self.makeChannel()
        let error = #expect(throws: SwitchboardError.self) {
            try channel.writeInbound(Self.buffer([0, 0, 0, 6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))
        }
        #expect(error?.code == .invalidArgument)
        _ = try? channel.finish()
    }

    @Test func truncatedFrameAtEOFIsReported() throws {
        var decoder = FrameDecoder()
        var buffer = Self.buffer(Array(Self.sampleFrames[1].prefixedBytes().dropLast(3)))
        #expect(try decoder.decode(buffer: &buffer) == nil)
        let error = #expect(throws: SwitchboardError.self) {
            try decoder.decodeLast(buffer: &buffer, seenEOF: true)
        }
        #expect(error?.code == .invalidArgument)
        var empty = ByteBufferAllocator().buffer(capacity: 0)
        #expect(try decoder.decodeLast(buffer: &empty, seenEOF: true) == nil)
    }

    @Test func encoderWritesPrefixAndBody() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
        for frame in Self.sampleFrames {
            try channel.writeOutbound(frame)
            let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
            #expect(Array(written.readableBytesView) == frame.prefixedBytes())
        }
        #expect(try channel.finish().isClean)
    }

    @Test func encoderAndDecoderRoundTrip() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers(
            ByteToMessageHandler(FrameDecoder()),
            MessageToByteHandler(FrameEncoder())
        )
        var wire = ByteBufferAllocator().buffer(capacity: 0)
        for frame in Self.sampleFrames {
            try channel.writeOutbound(frame)
            var written = try #require(try channel.readOutbound(as: ByteBuffer.self))
            wire.writeBuffer(&written)
        }
        try channel.writeInbound(wire)
        for frame in Self.sampleFrames {
            #expect(try channel.readInbound(as: Frame.self) == frame)
        }
        #expect(try channel.finish().isClean)
    }
}
