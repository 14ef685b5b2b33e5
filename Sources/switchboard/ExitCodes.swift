import SwitchboardProtocol

/// The CLI's exit codes, in one place (documented in `switchboard --help`).
enum ExitCodes {
    static let success: Int32 = 0
    /// A local failure that is not a status from the server (cannot read stdin, ...).
    static let localFailure: Int32 = 1
    /// `health`: the server answered, but not SERVING (it is draining).
    static let notServing: Int32 = 2
    /// Usage errors: ArgumentParser's validation failure code (EX_USAGE).
    static let usage: Int32 = 64
    /// A `SwitchboardError` with status code c exits with `statusBase + c`.
    static let statusBase: Int32 = 10

    /// `10 + code` for the canonical codes (CANCELLED 11 … UNAUTHENTICATED 26); a
    /// code this build does not know exits like UNKNOWN (12), so that no status can
    /// collide with the other exit codes or overflow the 0-255 range.
    static func forStatus(_ code: StatusCode) -> Int32 {
        let known = code.rawValue <= StatusCode.unauthenticated.rawValue
        return statusBase + Int32(known ? code.rawValue : StatusCode.unknown.rawValue)
    }

    static let helpText: String = {
        var lines = [
            "Exit codes:",
            "  0   success",
            "  1   local failure (e.g. cannot read stdin)",
            "  2   health: the server is not SERVING",
            "  64  usage error",
            "  10+c  the server (or the connection) failed the call with status code c:",
        ]
        for code in StatusCode.allCanonical where code != .ok {
            lines.append("        \(forStatus(code))  \(code.name)")
        }
        lines.append("Errors are printed on stderr as `switchboard: CODE_NAME: message`.")
        return lines.joined(separator: "\n")
    }()
}
