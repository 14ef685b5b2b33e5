import FuzzSupport

/// libFuzzer entry point: see `MessageFamily.workers` for the messages covered.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    MessageFuzzing.run(.workers, data, size)
}
