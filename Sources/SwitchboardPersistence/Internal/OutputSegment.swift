import SwitchboardProtocol

/// Consecutive output chunks of one turn, stored as one `output` row.
///
/// Why: a fast stream records tens of thousands of small chunks per second; one
/// row (and one index entry) per chunk made SQLite's b-tree inserts and the
/// per-statement overhead around them the store's main cost. A batch now writes
/// one row per turn (or per `maxBytes`): the chunks' bytes concatenated in
/// `data`, and in `layout`, per chunk, two unsigned LEB128 varints: the gap from
/// the previous chunk's sequence (from `firstSequence` for the first chunk, so 0)
/// and the chunk's length. Sequences within a turn strictly increase (the writer
/// refuses others), so rows of a turn never overlap and `lastSequence` orders them.
struct OutputSegment {
    /// A segment is written once its data reaches this size, so that reading
    /// from the middle of a long turn never decodes much more than it returns.
    static let maxBytes = 256 << 10

    let firstSequence: UInt64
    private(set) var lastSequence: UInt64
    private(set) var count = 0
    private(set) var layout: [UInt8] = []
    private(set) var data: [UInt8] = []

    init(first chunk: OutputChunk) {
        firstSequence = chunk.sequence
        lastSequence = chunk.sequence
        append(chunk)
    }

    /// Appends a chunk whose sequence is above `lastSequence` (or the first one).
    mutating func append(_ chunk: OutputChunk) {
        Self.appendVarint(chunk.sequence - lastSequence, to: &layout)
        Self.appendVarint(UInt64(chunk.data.count), to: &layout)
        data.append(contentsOf: chunk.data)
        lastSequence = chunk.sequence
        count += 1
    }

    private static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    /// Calls `body` with each chunk of a stored segment, in order, until it
    /// returns false. Throws DATA_LOSS when `layout` and `data` disagree (a
    /// damaged row), rather than returning wrong chunks.
    static func forEachChunk(
        firstSequence: UInt64, layout: some Collection<UInt8>, data: [UInt8],
        _ body: (OutputChunk) throws -> Bool
    ) throws {
        var cursor = layout.startIndex
        func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while cursor != layout.endIndex, shift < 64 {
                let byte = layout[cursor]
                layout.formIndex(after: &cursor)
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            throw damaged
        }
        var sequence = firstSequence
        var offset = 0
        while cursor != layout.endIndex {
            let (gap, overflow) = sequence.addingReportingOverflow(try varint())
            let length = try varint()
            guard !overflow, length <= UInt64(data.count - offset) else { throw damaged }
            sequence = gap
            let end = offset + Int(length)
            guard try body(OutputChunk(sequence: sequence, data: Array(data[offset..<end]))) else { return }
            offset = end
        }
        guard offset == data.count else { throw damaged }
    }

    static let damaged = SwitchboardError(
        code: .dataLoss, message: "the session store holds a damaged output row (its chunk layout does not match its data)"
    )
}
