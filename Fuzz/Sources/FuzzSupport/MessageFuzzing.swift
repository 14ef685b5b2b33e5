/// The body of every message fuzz target: wrap the input as the selected member
/// of `family`, decode the frame, check the result (``FrameChecks``).
public enum MessageFuzzing {
    public static func run(_ family: MessageFamily, _ data: UnsafeRawPointer?, _ size: Int) -> CInt {
        let input = UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size)
        guard let body = family.frameBody(for: input) else { return 0 }
        FrameChecks.decode(body)
        return 0
    }
}
