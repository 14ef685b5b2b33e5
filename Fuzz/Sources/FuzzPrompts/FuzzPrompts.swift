import FuzzSupport

/// libFuzzer entry point: see `MessageFamily.prompts` for the messages covered.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    MessageFuzzing.run(.prompts, data, size)
}
