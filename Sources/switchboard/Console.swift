#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SwitchboardProtocol

/// Unbuffered output on the standard descriptors.
///
/// Everything the CLI prints goes through here (never `print`), so that streamed
/// chunks appear the moment they arrive and stdout/stderr never interleave out of
/// order because of stdio buffering.
enum Console {
    static func out(_ text: String) {
        writeAll(fd: STDOUT_FILENO, Array(text.utf8))
    }

    static func out(bytes: [UInt8]) {
        writeAll(fd: STDOUT_FILENO, bytes)
    }

    static func err(_ text: String) {
        writeAll(fd: STDERR_FILENO, Array(text.utf8))
    }

    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    /// Writes all of `bytes`, retrying short writes and EINTR. Other errors (a closed
    /// pipe) drop the output: there is nowhere left to report them.
    private static func writeAll(fd: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}

/// A plain text table: columns padded to their widest cell, two spaces apart.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: String...) { self.header = header }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for row in all {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index])
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

extension String {
    fileprivate func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}

/// Small formatting helpers shared by the human-readable outputs.
enum Format {
    static func labels(_ labels: [Label]) -> String {
        labels.isEmpty ? "-" : labels.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// Now, in Unix epoch milliseconds (the wire's timestamps).
    static func nowMs() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) * 1000 + UInt64(spec.tv_nsec) / 1_000_000
    }

    /// "3s ago", "2m5s ago"; "-" for an unset timestamp.
    static func age(sinceMs: UInt64, nowMs: UInt64 = Format.nowMs()) -> String {
        guard sinceMs > 0 else { return "-" }
        guard nowMs > sinceMs else { return "just now" }
        let elapsed = nowMs - sinceMs
        if elapsed < 1000 { return "just now" }
        return DurationArgument.format(.seconds(elapsed / 1000)) + " ago"
    }

    static func milliseconds(_ ms: UInt64) -> String {
        DurationArgument.format(.milliseconds(Int64(clamping: ms)))
    }

    /// A wire `*_ms` setting, where 0 means "the server default".
    static func setting(_ ms: UInt64) -> String {
        ms == 0 ? "default" : milliseconds(ms)
    }

    /// A preview for one table cell: one line, at most `limit` characters.
    static func preview(_ text: String, limit: Int = 40) -> String {
        let oneLine = String(text.map { $0.isNewline || $0 == "\t" ? " " : $0 })
        return oneLine.count > limit ? String(oneLine.prefix(limit - 1)) + "…" : oneLine
    }
}
