#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwitchboardProtocol

/// Who may do what, decided from the peer's uid and gid as the kernel reported
/// them at `connect()` (SO_PEERCRED). See docs/SECURITY.md.
///
/// The socket file's mode and group are the first gate (only who can open the
/// socket gets this far); this policy is the second:
/// - **connect**: anyone, unless `connectUIDs`/`connectGIDs` name someone, in which
///   case only those (plus administrators and worker uids/gids).
/// - **register workers** (`/switchboard.v1.Workers/Connect`): administrators and
///   `workerUIDs`/`workerGIDs` only, because a worker sees every prompt routed to
///   its queue and writes the answers.
/// - **administer** (see and manage every session, worker details in status, no
///   per-uid limits): `adminUIDs` (root and the server's own uid by default, plus
///   any configured) and `adminGIDs`.
///
/// The gid matched is the peer's effective gid at `connect()`; supplementary
/// groups are not considered.
public struct AccessPolicy: Sendable, Hashable {
    public var connectUIDs: Set<UInt32> = []
    public var connectGIDs: Set<UInt32> = []
    public var workerUIDs: Set<UInt32> = []
    public var workerGIDs: Set<UInt32> = []
    /// Root and the server's own effective uid by default; entries from flags and
    /// files are added to these. (In-process tests may empty it to act as a
    /// non-administrator while running as root.)
    public var adminUIDs: Set<UInt32> = [0, geteuid()]
    public var adminGIDs: Set<UInt32> = []

    public init() {}

    /// What the policy grants a peer.
    public func grant(uid: UInt32, gid: UInt32) -> PeerGrant {
        let isAdmin = adminUIDs.contains(uid) || adminGIDs.contains(gid)
        let mayRegisterWorkers = isAdmin || workerUIDs.contains(uid) || workerGIDs.contains(gid)
        return PeerGrant(uid: uid, isAdmin: isAdmin, mayRegisterWorkers: mayRegisterWorkers)
    }

    /// Whether a peer may connect at all.
    public func mayConnect(uid: UInt32, gid: UInt32) -> Bool {
        if connectUIDs.isEmpty, connectGIDs.isEmpty { return true }
        if connectUIDs.contains(uid) || connectGIDs.contains(gid) { return true }
        let grant = grant(uid: uid, gid: gid)
        return grant.isAdmin || grant.mayRegisterWorkers
    }

    /// Adds the entries of another policy (flags on top of a file).
    public mutating func merge(_ other: AccessPolicy) {
        connectUIDs.formUnion(other.connectUIDs)
        connectGIDs.formUnion(other.connectGIDs)
        workerUIDs.formUnion(other.workerUIDs)
        workerGIDs.formUnion(other.workerGIDs)
        adminUIDs.formUnion(other.adminUIDs)
        adminGIDs.formUnion(other.adminGIDs)
    }

    // MARK: Policy files

    /// Reads a policy file: one `key = value[, value…]` per line, `#` comments,
    /// keys `allow-uid`, `allow-gid`, `worker-uid`, `worker-gid`, `admin-uid`,
    /// `admin-gid` (each may repeat); values are numbers or user/group names.
    /// INVALID_ARGUMENT naming the file and line for anything else.
    public static func load(path: String) throws(SwitchboardError) -> AccessPolicy {
        guard let file = fopen(path, "r") else {
            throw SwitchboardError(code: .invalidArgument, message: "cannot read policy file \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            text.append(contentsOf: chunk[0..<count])
            if text.count > 1 << 20 {
                throw SwitchboardError(code: .invalidArgument, message: "policy file \(path) is larger than 1 MiB")
            }
        }
        return try parse(String(decoding: text, as: UTF8.self), source: path)
    }

    /// Parses the text of a policy file (see ``load(path:)``).
    public static func parse(_ text: String, source: String = "policy") throws(SwitchboardError) -> AccessPolicy {
        var policy = AccessPolicy()
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.prefix { $0 != "#" }.trimmingWhitespace()
            if line.isEmpty { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw SwitchboardError(code: .invalidArgument, message: "\(source):\(lineNumber): expected key = value, got \"\(line.prefix(80))\"")
            }
            let key = line[..<equals].trimmingWhitespace()
            let values = line[line.index(after: equals)...].split(separator: ",").map { $0.trimmingWhitespace() }
            guard !values.isEmpty, !values.contains(where: \.isEmpty) else {
                throw SwitchboardError(code: .invalidArgument, message: "\(source):\(lineNumber): \(key) needs a value")
            }
            do throws(SwitchboardError) {
                for value in values {
                    try policy.add(key: key, value: value)
                }
            } catch {
                throw SwitchboardError(code: .invalidArgument, message: "\(source):\(lineNumber): \(error.message)")
            }
        }
        return policy
    }

    /// Adds one entry: `key` is one of the policy file's keys (or a `serve` flag's
    /// name without dashes), `value` a number or a user/group name.
    public mutating func add(key: String, value: String) throws(SwitchboardError) {
        switch key {
        case "allow-uid": connectUIDs.insert(try Self.resolveUser(value))
        case "allow-gid": connectGIDs.insert(try Self.resolveGroup(value))
        case "worker-uid": workerUIDs.insert(try Self.resolveUser(value))
        case "worker-gid": workerGIDs.insert(try Self.resolveGroup(value))
        case "admin-uid": adminUIDs.insert(try Self.resolveUser(value))
        case "admin-gid": adminGIDs.insert(try Self.resolveGroup(value))
        default:
            throw SwitchboardError(
                code: .invalidArgument,
                message: "unknown key \"\(key.prefix(40))\" (expected allow-uid, allow-gid, worker-uid, worker-gid, admin-uid or admin-gid)"
            )
        }
    }

    /// A uid from a number or a user name.
    public static func resolveUser(_ value: String) throws(SwitchboardError) -> UInt32 {
        if let uid = UInt32(value) { return uid }
        guard let entry = getpwnam(value) else {
            throw SwitchboardError(code: .invalidArgument, message: "unknown user \"\(value.prefix(64))\"")
        }
        return entry.pointee.pw_uid
    }

    /// A gid from a number or a group name.
    public static func resolveGroup(_ value: String) throws(SwitchboardError) -> UInt32 {
        if let gid = UInt32(value) { return gid }
        guard let entry = getgrnam(value) else {
            throw SwitchboardError(code: .invalidArgument, message: "unknown group \"\(value.prefix(64))\"")
        }
        return entry.pointee.gr_gid
    }
}

extension StringProtocol {
    fileprivate func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
