/// Cuts a byte stream into reads the way a socket might deliver them, at points
/// chosen by one control byte, so the fuzzer explores split prefixes and bodies.
///
/// Control byte: bits 5-7 pick the largest read (1, 2, 3, 5, 8, 32, 256 bytes or
/// the whole stream); bits 2-4 seed the generator that draws each read's size.
/// Bits 0-1 are left to the caller.
public struct StreamSplitter: Sequence {
    static let largestReads = [1, 2, 3, 5, 8, 32, 256, Int.max]

    let bytes: [UInt8]
    let largestRead: Int
    let seed: UInt64

    public init(control: UInt8, bytes: [UInt8]) {
        self.bytes = bytes
        self.largestRead = Self.largestReads[Int(control >> 5)]
        self.seed = UInt64((control >> 2) & 7)
    }

    public func makeIterator() -> Iterator {
        Iterator(bytes: bytes, largestRead: largestRead, state: seed)
    }

    public struct Iterator: IteratorProtocol {
        let bytes: [UInt8]
        let largestRead: Int
        var state: UInt64
        var index = 0

        public mutating func next() -> ArraySlice<UInt8>? {
            guard index < bytes.count else { return nil }
            let remaining = bytes.count - index
            let size = largestRead >= remaining ? remaining : 1 + Int(splitMix() % UInt64(largestRead))
            defer { index += size }
            return bytes[index..<(index + size)]
        }

        /// SplitMix64: deterministic, so a saved crash input replays identically.
        mutating func splitMix() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
