import FuzzSupport

/// libFuzzer entry point: see `MessageFamily.status` for the messages covered.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    MessageFuzzing.run(.status, data, size)
}
