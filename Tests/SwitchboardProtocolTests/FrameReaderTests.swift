import SwitchboardProtocol
import Testing

@Suite("FrameReader")
struct FrameReaderTests {
    private static let frames = Fixtures.frames.map(\.frame)
    private static let stream = frames.flatMap { $0.prefixedBytes() }

    /// Compares frame by frame, so a failure names the first difference instead of
    /// printing two long arrays.
    private func expectSameFrames(
        _ decoded: [Frame], _ expected: [Frame], _ comment: Comment? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(decoded.count == expected.count, comment, sourceLocation: sourceLocation)
        if let index = zip(decoded, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            Issue.record("frame #\(index) differs: \(decoded[index]) != \(expected[index]) \(comment.map { "\($0)" } ?? "")",
                         sourceLocation: sourceLocation)
        }
    }

    private func drain(_ reader: inout FrameReader) throws -> [Frame] {
        var frames: [Frame] = []
        while let frame = try reader.next() { frames.append(frame) }
        return frames
    }

    @Test("several frames in one append come out in order")
    func severalFramesAtOnce() throws {
        var reader = FrameReader(maximumFrameSize: ProtocolVersion.defaultMaxFrameSize)
        reader.append(Self.stream)
        expectSameFrames(try drain(&reader), Self.frames)
        #expect(reader.bufferedByteCount == 0)
        #expect(try reader.next() == nil)
    }

    @Test("a stream split in two at every byte boundary yields the same frames")
    func splitAtEveryBoundary() throws {
        // Three frames of different kinds keep this quadratic test fast.
        let frames = [Self.frames[0], Self.frames[7], Self.frames[Self.frames.count - 2]]
        let stream = frames.flatMap { $0.prefixedBytes() }
        for split in 0...stream.count {
            var reader = FrameReader(maximumFrameSize: 1 << 20)
            reader.append(stream[..<split])
            var decoded = try drain(&reader)
            reader.append(stream[split...])
            decoded += try drain(&reader)
            expectSameFrames(decoded, frames, "split at \(split)")
            #expect(reader.bufferedByteCount == 0)
        }
    }

    @Test("a stream fed one byte at a time yields every frame once its last byte arrives")
    func byteByByte() throws {
        var reader = FrameReader(maximumFrameSize: 1 << 20)
        var decoded: [Frame] = []
        var boundaries: [Int] = []
        for (index, byte) in Self.stream.enumerated() {
            reader.append(CollectionOfOne(byte))
            while let frame = try reader.next() {
                decoded.append(frame)
                boundaries.append(index + 1)
            }
        }
        expectSameFrames(decoded, Self.frames)
        var end = 0
        let expectedBoundaries = Self.frames.map { frame in
            end += frame.prefixedBytes().count
            return end
        }
        #expect(boundaries == expectedBoundaries)
    }

    @Test("random chunking yields the same frames", arguments: [UInt64(1), 2, 3])
    func randomChunks(seed: UInt64) throws {
        var generator = SplitMix64(seed: seed)
        var reader = FrameReader(maximumFrameSize: 1 << 20)
        var decoded: [Frame] = []
        var offset = 0
        while offset < Self.stream.count {
            let size = min(Int.random(in: 1...700, using: &generator), Self.stream.count - offset)
            reader.append(Self.stream[offset..<(offset + size)])
            offset += size
            decoded += try drain(&reader)
        }
        expectSameFrames(decoded, Self.frames)
    }

    @Test("an oversized prefix is rejected before the body arrives, and stays rejected")
    func oversizedPrefix() {
        var reader = FrameReader(maximumFrameSize: 1024)
        reader.append([0xFF, 0xFF, 0xFF])
        #expect(throws: Never.self) { try reader.next() }
        reader.append([0xFF])
        let expected = SwitchboardError(
            code: .resourceExhausted, message: "frame of 4294967295 bytes exceeds the maximum of 1024 bytes"
        )
        #expect(throws: expected) { try reader.next() }
        #expect(reader.bufferedByteCount == 4)
        // The stream cannot be resynchronised: it keeps failing.
        reader.append([0x00, 0x00, 0x00, 0x00])
        #expect(throws: expected) { try reader.next() }
    }

    @Test("a prefix one above the maximum fails, the maximum itself waits for the body")
    func prefixAtTheLimit() throws {
        var over = FrameReader(maximumFrameSize: 100)
        over.append([0x00, 0x00, 0x00, 101])
        #expect(throws: SwitchboardError(
            code: .resourceExhausted, message: "frame of 101 bytes exceeds the maximum of 100 bytes"
        )) { try over.next() }

        var atLimit = FrameReader(maximumFrameSize: 100)
        atLimit.append([0x00, 0x00, 0x00, 100])
        #expect(try atLimit.next() == nil)
        #expect(atLimit.bufferedByteCount == 4)
    }

    @Test("a frame larger than the maximum is rejected even when it is complete")
    func completeButTooLarge() {
        let frame = Frame(kind: .cancel(reason: String(repeating: "x", count: 200)))
        var reader = FrameReader(maximumFrameSize: 100)
        reader.append(frame.prefixedBytes())
        #expect(throws: SwitchboardError.self) { try reader.next() }
    }

    @Test("a malformed body is reported and skipped; the next frame still decodes")
    func malformedBodySkipped() throws {
        var reader = FrameReader(maximumFrameSize: 1024)
        let good = Frame(kind: .ping(nonce: 7))
        reader.append([0x00, 0x00, 0x00, 0x02, 0x0F, 0x01])  // invalid wire type
        reader.append([0x00, 0x00, 0x00, 0x00])  // empty body: no kind
        reader.append(good.prefixedBytes())
        #expect(throws: SwitchboardError.self) { try reader.next() }
        #expect(throws: SwitchboardError(code: .invalidArgument, message: "malformed frame: frame has no kind")) {
            try reader.next()
        }
        #expect(try reader.next() == good)
        #expect(try reader.next() == nil)
    }

    @Test("many frames through one reader with partial reads keep the buffer bounded")
    func compaction() throws {
        let frame = Frame(callID: 3, kind: .message(CallMessage(payload: .promptEvent(.output(
            OutputChunk(sequence: 1, data: Array(repeating: 0x5A, count: 1000))
        )))))
        let bytes = frame.prefixedBytes()
        var reader = FrameReader(maximumFrameSize: 4096)
        var decoded = 0
        for round in 0..<200 {
            reader.append(bytes)
            reader.append(bytes.prefix(round % bytes.count))
            reader.append(bytes.dropFirst(round % bytes.count))
            while let next = try reader.next() {
                #expect(next == frame)
                decoded += 1
            }
            #expect(reader.bufferedByteCount == 0)
        }
        #expect(decoded == 400)

        // Interleaved: never more than one frame's worth left over.
        for _ in 0..<50 {
            reader.append(bytes + bytes.prefix(10))
            #expect(try reader.next() == frame)
            #expect(try reader.next() == nil)
            reader.append(bytes.dropFirst(10))
            #expect(try reader.next() == frame)
            #expect(reader.bufferedByteCount == 0)
        }
    }
}
