import SwitchboardProtocol
import Testing

@Suite("FrameLength")
struct FrameLengthTests {
    static let bigEndianTable: [(UInt32, [UInt8])] = [
        (0, [0, 0, 0, 0]),
        (1, [0, 0, 0, 1]),
        (0x0102_0304, [1, 2, 3, 4]),
        (4 * 1024 * 1024, [0x00, 0x40, 0x00, 0x00]),
        (UInt32.max, [0xFF, 0xFF, 0xFF, 0xFF]),
    ]

    @Test("write produces big-endian bytes", arguments: bigEndianTable)
    func write(_ length: UInt32, _ expected: [UInt8]) {
        var bytes: [UInt8] = [0xEE, 0xEE, 0xEE, 0xEE, 0xEE]
        bytes.withUnsafeMutableBytes { FrameLength.write(length, to: $0) }
        #expect(bytes == expected + [0xEE])
        #expect(bytes.withUnsafeBytes { FrameLength.read(from: $0) } == length)
    }

    @Test("read uses only the first four bytes and works unaligned")
    func readUnaligned() {
        let bytes: [UInt8] = [0x99, 0x00, 0x00, 0x01, 0x00, 0x77]
        let length = bytes.withUnsafeBytes { FrameLength.read(from: UnsafeRawBufferPointer(rebasing: $0[1...])) }
        #expect(length == 256)
    }

    @Test("prefixSize is 4")
    func prefixSize() {
        #expect(FrameLength.prefixSize == 4)
    }

    @Test("validate accepts lengths up to the maximum")
    func validateAccepts() throws {
        try FrameLength.validate(0, maximum: 0)
        try FrameLength.validate(0, maximum: 1024)
        try FrameLength.validate(1024, maximum: 1024)
        try FrameLength.validate(UInt32.max, maximum: UInt32.max)
    }

    @Test("validate rejects a length above the maximum with RESOURCE_EXHAUSTED")
    func validateRejects() {
        #expect(throws: SwitchboardError(
            code: .resourceExhausted, message: "frame of 1025 bytes exceeds the maximum of 1024 bytes"
        )) {
            try FrameLength.validate(1025, maximum: 1024)
        }
        #expect(throws: SwitchboardError(
            code: .resourceExhausted, message: "frame of 4294967295 bytes exceeds the maximum of 4194304 bytes"
        )) {
            try FrameLength.validate(UInt32.max, maximum: ProtocolVersion.defaultMaxFrameSize)
        }
    }
}
