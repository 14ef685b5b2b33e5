import Foundation
import Glibc
import Synchronization
import SwitchboardProtocol
import Testing

/// All end-to-end suites hang under this one, serialized: every test starts real
/// processes, and their ordering checks should not compete with each other for
/// the two CPUs.
@Suite("End to end (real switchboard processes)", .serialized, .timeLimit(.minutes(TestTimeScale.hangGuardMinutes)))
enum EndToEnd {}

// MARK: - JSON output of the CLI

func jsonObject(_ text: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw E2EError("not a JSON object: \(text)")
    }
    return object
}

/// An integer from a JSON number or a numeric string (proto JSON writes 64-bit
/// integers as strings).
func jsonInt(_ value: Any?) -> Int? {
    switch value {
    case let int as Int: int
    case let number as NSNumber: number.intValue
    case let string as String: Int(string)
    default: nil
    }
}

/// A status code from its JSON form: the canonical name or the number.
func jsonCode(_ value: Any?) -> StatusCode? {
    if let string = value as? String { return StatusCode(name: string) }
    return jsonInt(value).map { StatusCode(rawValue: UInt32($0)) }
}

/// True when a JSON enum value names `state` ("busy", "SESSION_STATE_BUSY", ...).
func jsonState(_ value: Any?, is state: String) -> Bool {
    guard let string = value as? String else { return false }
    return string.uppercased() == state.uppercased() || string.uppercased().hasSuffix("_" + state.uppercased())
}

// MARK: - CLI output

/// The id from the `session: ID` line that `prompt` without `--session` prints on stderr.
func sessionID(fromStderr stderr: String) -> String? {
    for line in stderr.split(separator: "\n") {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("session:") {
            return trimmed.dropFirst("session:".count).trimmingCharacters(in: .whitespaces)
        }
    }
    return nil
}

func words(_ text: String) -> [String] {
    text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
}

// MARK: - Processes

/// One line of /proc/PID/stat.
struct ProcStat {
    var pid: Int32
    var state: Character
    var parent: Int32
    var group: Int32
    var commandLine: String
}

/// Every process on the machine, from /proc.
func allProcesses() -> [ProcStat] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { entry -> ProcStat? in
        guard let pid = Int32(entry),
            let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count >= 3, let state = fields[0].first, let parent = Int32(fields[1]), let group = Int32(fields[2])
        else { return nil }
        let commandLine = (FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")).map {
            String(decoding: $0, as: UTF8.self).replacingOccurrences(of: "\0", with: " ").trimmingCharacters(in: .whitespaces)
        } ?? ""
        return ProcStat(pid: pid, state: state, parent: parent, group: group, commandLine: commandLine)
    }
}

/// True while `pid` exists (a zombie counts as existing).
func processExists(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno != ESRCH
}

// MARK: - Misc

/// A small deterministic generator, so "random" inputs are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// An async barrier: `wait()` returns once `count` tasks have called it.
actor Barrier {
    private let count: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { self.count = count }

    func wait() async {
        await withCheckedContinuation { continuation in
            waiting.append(continuation)
            if waiting.count == count {
                waiting.forEach { $0.resume() }
                waiting.removeAll()
            }
        }
    }
}

/// A value behind a mutex, shareable between threads and closures.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}
