// Shared by the load generators: a monotonic clock in nanoseconds, percentiles,
// and the one-line JSON result every measurement prints (run.sh aggregates them).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC, like the C programs).
@inline(__always)
public func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Latency samples (nanoseconds) of one measurement.
public struct Samples: Sendable {
    public private(set) var values: [UInt64] = []
    public init(capacity: Int = 0) { values.reserveCapacity(capacity) }
    public mutating func append(_ nanos: UInt64) { values.append(nanos) }
    public mutating func append(contentsOf other: Samples) { values.append(contentsOf: other.values) }
    public var count: Int { values.count }

    /// Nearest-rank percentile in microseconds (p in 0...100).
    public func percentileMicros(_ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return Self.rank(sorted, p)
    }

    public func summary() -> [String: Double] {
        guard !values.isEmpty else { return [:] }
        let sorted = values.sorted()
        return [
            "p50_us": Self.rank(sorted, 50),
            "p90_us": Self.rank(sorted, 90),
            "p99_us": Self.rank(sorted, 99),
            "p999_us": Self.rank(sorted, 99.9),
            "min_us": Double(sorted.first!) / 1000,
            "max_us": Double(sorted.last!) / 1000,
        ]
    }

    static func rank(_ sorted: [UInt64], _ p: Double) -> Double {
        let index = min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))
        return Double(sorted[index]) / 1000
    }

    /// Writes the samples (one microsecond value per line) for the plot.
    public func write(toPath path: String) {
        guard let file = fopen(path, "w") else { return }
        defer { fclose(file) }
        for value in values {
            fputs("\(Double(value) / 1000)\n", file)
        }
    }
}

/// Prints one JSON object on one line: `{"bench": name, ...fields}`.
public func emitResult(_ name: String, _ fields: [String: Double], labels: [String: String] = [:]) {
    var parts = ["\"bench\":\"\(name)\""]
    for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
        parts.append("\"\(key)\":\"\(value)\"")
    }
    for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
        let text = value.isFinite ? String(value) : "null"
        parts.append("\"\(key)\":\(text)")
    }
    let line = "{" + parts.joined(separator: ",") + "}\n"
    _ = line.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }
}

/// Command-line options as `--key value` pairs after a subcommand.
public struct Options: Sendable {
    public let command: String
    var values: [String: String] = [:]
    var flags: Set<String> = []

    public init(_ arguments: [String] = CommandLine.arguments) {
        command = arguments.count > 1 ? arguments[1] : "help"
        var index = 2
        while index < arguments.count {
            let argument = arguments[index]
            if argument.hasPrefix("--") {
                let key = String(argument.dropFirst(2))
                if index + 1 < arguments.count, !arguments[index + 1].hasPrefix("--") {
                    values[key] = arguments[index + 1]
                    index += 2
                } else {
                    flags.insert(key)
                    index += 1
                }
            } else {
                index += 1
            }
        }
    }

    public func string(_ key: String, _ fallback: String) -> String { values[key] ?? fallback }
    public func int(_ key: String, _ fallback: Int) -> Int { values[key].flatMap { Int($0) } ?? fallback }
    public func double(_ key: String, _ fallback: Double) -> Double { values[key].flatMap { Double($0) } ?? fallback }
    public func flag(_ key: String) -> Bool { flags.contains(key) }
    public func optional(_ key: String) -> String? { values[key] }
}

/// `n` 32-byte words ("wNNN...N " padded to 31 characters plus a space): the echo
/// backend streams each word as one 32-byte chunk.
public func promptOf32ByteWords(_ n: Int) -> String {
    var text = ""
    text.reserveCapacity(n * 32)
    let pad = String(repeating: "x", count: 31)
    for i in 0..<n {
        let head = "w\(i)"
        text += head
        text += pad.prefix(31 - head.count)
        text += " "
    }
    return text
}

/// Reads VmRSS of a process in KiB from /proc (Linux); 0 when unavailable.
public func residentKiB(pid: Int32) -> Int {
    guard let file = fopen("/proc/\(pid)/status", "r") else { return 0 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("VmRSS:") {
            let digits = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if digits.count >= 2, let value = Int(digits[1]) { return value }
        }
    }
    return 0
}

/// Writes a line to standard error (fd 2; the C `stderr` global is not concurrency-safe).
public func printError(_ message: String) {
    let line = message + "\n"
    _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}
