import FuzzSupport

/// libFuzzer entry point: see `MessageFamily.sessions` for the messages covered.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    MessageFuzzing.run(.sessions, data, size)
}
