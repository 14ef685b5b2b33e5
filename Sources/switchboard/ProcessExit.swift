#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Ends the process with `code` (stdio has nothing buffered: ``Console`` writes directly).
func exitProcess(_ code: Int32) -> Never {
    exit(code)
}
