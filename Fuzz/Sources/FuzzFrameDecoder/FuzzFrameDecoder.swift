import FuzzSupport
import NIOCore
import NIOEmbedded
import SwitchboardProtocol
import SwitchboardTransport

// Input: one control byte, then the byte stream. Control bits 0-1 pick the
// maximum frame size (64 bytes, the 4 MiB default, UInt32.max, 0) so the limit
// check is hit both ways; the other bits pick the read sizes (StreamSplitter).
//
// The stream goes through both decoders a peer's bytes can meet: FrameReader
// (raw-socket clients and tests) and the transport's FrameDecoder inside a NIO
// pipeline (server and Swift client). Checked:
//   - neither crashes, and every error is a SwitchboardError with a status code;
//   - both give the same frames and then the same first error;
//   - every decoded frame round-trips (FrameChecks.roundTrip);
//   - no allocation grows with a claimed length: scripts/fuzz.sh runs this target
//     with -malloc_limit_mb far below the 4 MiB / 4 GiB lengths a prefix can claim
//     in a 4 KiB input, so reserving memory for the announced body fails the run.

let maximumFrameSizes: [UInt32] = [64, ProtocolVersion.defaultMaxFrameSize, UInt32.max, 0]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    guard size > 0, let data else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let control = input[0]
    let maximum = maximumFrameSizes[Int(control & 3)]
    let reads = StreamSplitter(control: control, bytes: Array(input.dropFirst()))

    let viaReader = decodeWithFrameReader(reads, maximum: maximum)
    let viaNIO = decodeWithNIO(reads, maximum: maximum)
    guard viaReader.frames == viaNIO.frames else {
        fatalError("FrameReader and FrameDecoder disagree\n  reader: \(viaReader.frames)\n  NIO:    \(viaNIO.frames)")
    }
    guard viaReader.error == viaNIO.error else {
        fatalError("FrameReader and FrameDecoder fail differently: \(String(describing: viaReader.error)) vs \(String(describing: viaNIO.error))")
    }
    for frame in viaReader.frames {
        FrameChecks.roundTrip(frame)
    }
    return 0
}

/// The frames decoded until the first error, and that error.
struct Decoded {
    var frames: [Frame] = []
    var error: SwitchboardError?
}

func decodeWithFrameReader(_ reads: StreamSplitter, maximum: UInt32) -> Decoded {
    var reader = FrameReader(maximumFrameSize: maximum)
    var decoded = Decoded()
    for read in reads {
        reader.append(read)
        do {
            while let frame = try reader.next() {
                decoded.frames.append(frame)
            }
        } catch {
            decoded.error = checked(error, "FrameReader")
            return decoded
        }
    }
    return decoded
}

func decodeWithNIO(_ reads: StreamSplitter, maximum: UInt32) -> Decoded {
    let channel = EmbeddedChannel()
    var decoded = Decoded()
    do {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maximumFrameSize: maximum)))
    } catch {
        fatalError("cannot set up the pipeline: \(error)")
    }
    defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
    for read in reads {
        var failure: (any Error)?
        do {
            try channel.writeInbound(channel.allocator.buffer(bytes: read))
        } catch {
            failure = error
        }
        // Frames decoded before an error in the same read are still delivered.
        do {
            while let frame = try channel.readInbound(as: Frame.self) {
                decoded.frames.append(frame)
            }
        } catch {
            fatalError("readInbound failed: \(error)")
        }
        if let failure {
            decoded.error = checked(failure, "FrameDecoder")
            return decoded
        }
    }
    return decoded
}

/// Every decoder error is a SwitchboardError: RESOURCE_EXHAUSTED for a length
/// over the maximum, INVALID_ARGUMENT for a body that does not decode.
func checked(_ error: any Error, _ decoder: String) -> SwitchboardError {
    guard let error = error as? SwitchboardError else {
        fatalError("\(decoder) threw a non-Switchboard error: \(error)")
    }
    switch error.code {
    case .resourceExhausted:
        guard error.message.contains("exceeds the maximum") else { fatalError("\(decoder): unexpected \(error)") }
    case .invalidArgument:
        FrameChecks.expectMalformed(error, decoder)
    default:
        fatalError("\(decoder) threw \(error)")
    }
    return error
}
