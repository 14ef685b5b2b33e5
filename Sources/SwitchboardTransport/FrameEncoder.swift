import NIOCore
import SwitchboardProtocol

/// Writes each outbound ``Frame`` as length prefix + protobuf body, packed once
/// directly into the outbound buffer (see ``NIOCore/ByteBuffer/writeFrame(_:)``).
public struct FrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = Frame

    public init() {}

    public func encode(data: Frame, out: inout ByteBuffer) throws {
        out.writeFrame(data)
    }
}
