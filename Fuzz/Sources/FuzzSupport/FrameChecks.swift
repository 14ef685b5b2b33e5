import SwitchboardProtocol

/// The properties every fuzz target checks on what it decoded. A violation traps
/// (`fatalError`), which libFuzzer reports as a crash with the input saved.
public enum FrameChecks {
    /// Decodes one frame body through the public API. A failure must be a clear
    /// `INVALID_ARGUMENT` "malformed frame: ..." error, nothing else; a success
    /// must survive ``roundTrip(_:)``.
    @discardableResult
    public static func decode(_ body: [UInt8]) -> Frame? {
        do {
            let frame = try Frame(serializedBytes: body)
            roundTrip(frame)
            return frame
        } catch {
            expectMalformed(error, "Frame(serializedBytes:)")
            return nil
        }
    }

    /// Decode → encode → decode gives the same value, and encoding is stable:
    /// the re-decoded value encodes to the same bytes, through every encoder
    /// (array, prefixed, the borrowed buffer of the NIO encoder) and through the
    /// stream reader.
    public static func roundTrip(_ frame: Frame) {
        let bytes = frame.serializedBytes()
        let again: Frame
        do {
            again = try Frame(serializedBytes: bytes)
        } catch {
            fatalError("a re-encoded frame does not decode: \(error)\n  frame: \(frame)")
        }
        // A refused string (NUL, invalid UTF-8) is reported by the first decoding
        // only (`invalidString`): libprotobuf-c cut it at the NUL or it was
        // repaired, so the re-encoded values are clean and must stay so.
        var values = frame
        values.invalidString = nil
        guard again.invalidString == nil else {
            fatalError("a re-encoded frame still has a refused string \(String(describing: again.invalidString))\n  frame: \(frame)")
        }
        guard again == values else {
            fatalError("decode → encode → decode changed the frame\n  first:  \(frame)\n  second: \(again)")
        }
        guard again.serializedBytes() == bytes else {
            fatalError("encoding is not stable for \(frame)")
        }
        frame.withSerializedBytes { borrowed in
            guard borrowed.elementsEqual(bytes) else { fatalError("withSerializedBytes differs for \(frame)") }
        }
        let prefixed = frame.prefixedBytes()
        guard prefixed.count == FrameLength.prefixSize + bytes.count, prefixed.dropFirst(FrameLength.prefixSize).elementsEqual(bytes) else {
            fatalError("prefixedBytes differs for \(frame)")
        }
        var reader = FrameReader(maximumFrameSize: UInt32.max)
        reader.append(prefixed)
        do {
            guard try reader.next() == values, reader.bufferedByteCount == 0 else {
                fatalError("FrameReader did not give the prefixed frame back: \(frame)")
            }
        } catch {
            fatalError("FrameReader failed on a prefixed frame: \(error)\n  frame: \(frame)")
        }
    }

    /// Bad bytes must be answered with `INVALID_ARGUMENT` and a message.
    public static func expectMalformed(_ error: any Error, _ context: String) {
        guard let error = error as? SwitchboardError else {
            fatalError("\(context) threw a non-Switchboard error: \(error)")
        }
        guard error.code == .invalidArgument, error.message.hasPrefix("malformed frame: ") else {
            fatalError("\(context) threw \(error), expected INVALID_ARGUMENT malformed frame")
        }
    }
}
