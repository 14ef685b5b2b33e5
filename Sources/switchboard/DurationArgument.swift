import Foundation
import ArgumentParser

/// The one parser (and printer) of DURATION arguments: `250ms`, `3s`, `2m`, `1h`, or
/// plain seconds such as `1.5`. Fractions work with every unit (`1.5s`, `0.5h`).
enum DurationArgument {
    static let syntax = "250ms, 3s, 2m, 1h or plain seconds like 1.5"

    private static let units: [(suffix: String, nanoseconds: Double)] = [
        // Longest suffix first: "ms" must win over "s" and "m".
        ("ms", 1e6),
        ("s", 1e9),
        ("m", 60e9),
        ("h", 3600e9),
    ]

    /// Longest accepted duration (about 292 years would overflow; a year is plenty).
    static let maximum: Duration = .seconds(366 * 24 * 3600)

    /// Parses `text`; the error names the value and the accepted forms.
    static func parse(_ text: String) throws(ValidationError) -> Duration {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        var number = Substring(trimmed)
        var scale = 1e9
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            number = trimmed.dropLast(unit.suffix.count)
            scale = unit.nanoseconds
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            number.filter({ $0 == "." }).count <= 1, number != ".", let value = Double(number)
        else {
            throw ValidationError("invalid duration \"\(text)\": expected \(syntax)")
        }
        let nanoseconds = (value * scale).rounded()
        guard nanoseconds <= Double(maximum.components.seconds) * 1e9 else {
            throw ValidationError("invalid duration \"\(text)\": longer than \(format(maximum))")
        }
        return .nanoseconds(Int64(nanoseconds))
    }

    /// A short human form: `250ms`, `3s`, `1.5s`, `2m`, `1h30m`, `0s`.
    static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds < 0) { return "-" + format(.zero - duration) }
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds == 0 { return attoseconds == 0 ? "0s" : "<1ms" }
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        if milliseconds < 60_000 {
            return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(Double(milliseconds) / 1000)s"
        }
        let totalSeconds = milliseconds / 1000
        let hours = totalSeconds / 3600
        let minutes = (totalSeconds % 3600) / 60
        let rest = totalSeconds % 60
        var text = ""
        if hours > 0 { text += "\(hours)h" }
        if minutes > 0 { text += "\(minutes)m" }
        if rest > 0 { text += "\(rest)s" }
        return text
    }

    /// Whole milliseconds for a wire field (`*_ms`), rounded up so that a positive
    /// value never becomes 0, which the wire reads as "the server default".
    static func milliseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        let perMillisecond: Int64 = 1_000_000_000_000_000
        return UInt64(seconds) * 1000 + UInt64((attoseconds + perMillisecond - 1) / perMillisecond)
    }
}
