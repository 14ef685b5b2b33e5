import CProtobufC

/// Owns every C allocation made while one message tree is built for `*__pack`:
/// nested messages, pointer arrays, NUL-terminated strings and bytes.
///
/// A bump allocator. The first `inlineCapacity` bytes live on the stack of
/// ``with(_:)`` (so a typical frame, and the hot output-chunk frame, allocates
/// nothing on the heap); larger trees spill into heap chunks, all freed together
/// when the arena goes away. Nothing is freed individually, and nothing built in
/// the arena may be used after ``with(_:)`` returns.
struct CArena: ~Copyable {
    static let inlineCapacity = 1024
    private static let minimumChunkSize = 8192
    /// Bytes at the start of a heap chunk that hold the link to the previous chunk.
    private static let chunkHeaderSize = 16

    private var cursor: UnsafeMutableRawPointer
    private var end: UnsafeMutableRawPointer
    /// Singly linked list of heap chunks; the first word of each is the next one.
    private var chunks: UnsafeMutableRawPointer?
    /// The C strings made by ``string(_:)`` from a Swift string with an embedded
    /// NUL, which packing would cut short (see ``Frame/fieldWithNUL()``).
    private(set) var stringsWithNUL: [UnsafeRawPointer] = []

    /// Runs `body` with a fresh arena whose memory is released when `body` returns.
    static func with<R>(_ body: (inout CArena) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(byteCount: inlineCapacity, alignment: 16) { buffer in
            var arena = CArena(inline: buffer)
            return try body(&arena)
        }
    }

    private init(inline buffer: UnsafeMutableRawBufferPointer) {
        // withUnsafeTemporaryAllocation never hands out a nil base for a non-zero count.
        cursor = buffer.baseAddress!
        end = cursor + buffer.count
        chunks = nil
    }

    deinit {
        var next = chunks
        while let chunk = next {
            next = chunk.load(as: UnsafeMutableRawPointer?.self)
            chunk.deallocate()
        }
    }

    /// `count` uninitialized bytes aligned to `alignment` (a power of two, at most 16).
    mutating func allocateBytes(_ count: Int, alignment: Int) -> UnsafeMutableRawPointer {
        let start = cursor.alignedUp(toMultipleOf: alignment)
        if start <= end, start.distance(to: end) >= count {
            cursor = start + count
            return start
        }
        return allocateSlow(count, alignment: alignment)
    }

    private mutating func allocateSlow(_ count: Int, alignment: Int) -> UnsafeMutableRawPointer {
        let size = max(Self.minimumChunkSize, Self.chunkHeaderSize + alignment + count)
        let chunk = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        chunk.storeBytes(of: chunks, as: UnsafeMutableRawPointer?.self)
        chunks = chunk
        let start = (chunk + Self.chunkHeaderSize).alignedUp(toMultipleOf: alignment)
        cursor = start + count
        end = chunk + size
        return start
    }

    /// Uninitialized, typed storage for `count` values of a trivial C type.
    mutating func allocate<T>(_: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        allocateBytes(MemoryLayout<T>.stride * count, alignment: MemoryLayout<T>.alignment)
            .bindMemory(to: T.self, capacity: count)
    }

    /// A protobuf-c message struct initialized by its generated `*__init` function
    /// (the `*_INIT` macros do not import into Swift).
    mutating func message<T>(_ initialize: (UnsafeMutablePointer<T>?) -> Void) -> UnsafeMutablePointer<T> {
        let pointer = allocate(T.self)
        initialize(pointer)
        return pointer
    }

    /// A NUL-terminated copy of the UTF-8 of `string`.
    ///
    /// protobuf-c represents `string` fields as C strings and measures them with
    /// `strlen`, so an embedded NUL truncates the string on the wire at that point;
    /// such strings are remembered in ``stringsWithNUL``.
    mutating func string(_ string: String) -> UnsafeMutablePointer<CChar> {
        var string = string
        return string.withUTF8 { utf8 in
            let bytes = allocateBytes(utf8.count + 1, alignment: 1)
            if let base = utf8.baseAddress {
                bytes.copyMemory(from: base, byteCount: utf8.count)
            }
            bytes.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
            if utf8.contains(0) { stringsWithNUL.append(UnsafeRawPointer(bytes)) }
            return bytes.bindMemory(to: CChar.self, capacity: utf8.count + 1)
        }
    }

    /// A `bytes` field whose data is copied into the arena.
    mutating func binary(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        guard !bytes.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        let storage = allocate(UInt8.self, count: bytes.count)
        bytes.withUnsafeBufferPointer { source in
            storage.initialize(from: source.baseAddress!, count: source.count)
        }
        return ProtobufCBinaryData(len: bytes.count, data: storage)
    }

    /// A C array of message pointers for a `repeated` message field; nil when empty.
    mutating func pointerArray<Element, C>(
        _ elements: [Element],
        _ convert: (Element, inout CArena) -> UnsafeMutablePointer<C>
    ) -> UnsafeMutablePointer<UnsafeMutablePointer<C>?>? {
        guard !elements.isEmpty else { return nil }
        let array = allocate(UnsafeMutablePointer<C>?.self, count: elements.count)
        for index in elements.indices {
            (array + index).initialize(to: convert(elements[index], &self))
        }
        return array
    }
}

// MARK: - Decoding helpers (unpacked C -> Swift values, everything copied)

/// A Swift copy of an unpacked C string. Invalid UTF-8 would be repaired with
/// U+FFFD, but a frame whose string fields fail the wire check is refused
/// (``Frame/invalidString``), so the receiver never relies on that repair.
@inline(__always)
func swiftString(_ pointer: UnsafePointer<CChar>?) -> String {
    guard let pointer else { return "" }
    return String(cString: pointer)
}

/// A Swift copy of an unpacked `bytes` field.
@inline(__always)
func swiftBytes(_ binary: ProtobufCBinaryData) -> [UInt8] {
    guard binary.len > 0, let data = binary.data else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: binary.len))
}

/// Swift copies of the elements of an unpacked `repeated` message field.
@inline(__always)
func swiftArray<C, Element>(
    _ array: UnsafeMutablePointer<UnsafeMutablePointer<C>?>?,
    count: Int,
    _ convert: (UnsafePointer<C>) -> Element
) -> [Element] {
    guard count > 0, let array else { return [] }
    var result: [Element] = []
    result.reserveCapacity(count)
    for index in 0..<count {
        // protobuf-c never leaves a hole in an unpacked repeated field; skip one defensively.
        if let element = array[index] { result.append(convert(element)) }
    }
    return result
}

extension SwitchboardError {
    /// The error for bytes that do not decode into a frame this build understands.
    static func malformedFrame(_ detail: String) -> SwitchboardError {
        SwitchboardError(code: .invalidArgument, message: "malformed frame: \(detail)")
    }
}
