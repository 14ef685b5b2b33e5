/// One named ACP agent of the server's configuration (`agents.NAME` in the
/// `serve --config` file): what to run and within which limits.
///
/// Lives in Core so the agent host (a later target) and the CLI that reads the
/// file share one validated value; nothing here touches a process or the disk.
/// ``validate()`` is the one place the rules live: the CLI calls it after mapping
/// the file's keys, and names the file and key in its error.
public struct AgentConfiguration: Sendable, Hashable {
    /// How the agent's `session/request_permission` is answered.
    public enum PermissionPolicy: String, Sendable, Hashable, CaseIterable {
        /// Every request is allowed (the agent's first "allow" option).
        case allow
        /// Every request is rejected (the safe default).
        case deny
    }

    /// Variables passed through from the server's environment when the file sets
    /// no `environment.allow`: enough for a typical agent to find its tools and
    /// home directory, nothing secret by default.
    public static let defaultEnvironmentAllow = ["HOME", "LANG", "LC_ALL", "LOGNAME", "PATH", "TERM", "USER"]
    /// Bounds of ``maxLineBytes``: a line must at least hold a small JSON-RPC
    /// message, and one line is never allowed to take a gigabyte of memory.
    public static let maxLineBytesRange = 1024...(1 << 30)

    /// The name sessions use as `agent:NAME` (the task-queue name rule).
    public var name: String
    /// argv of the agent: the program (looked up in `PATH` when it has no slash)
    /// and its arguments. Never empty.
    public var command: [String]
    /// Absolute working directory of the agent and the `cwd` of `session/new`.
    public var cwd: String
    /// Names of the server's environment variables the agent inherits; every
    /// other variable is cleared.
    public var environmentAllow: [String]
    /// Variables set for the agent whatever the server's environment holds
    /// (they win over an allowed variable of the same name).
    public var environmentSet: [String: String]
    /// Answer to the agent's permission requests.
    public var permission: PermissionPolicy
    /// Spawn, `initialize` and `session/new` (or `session/load`) must finish
    /// within this, else the process group is killed and the turn fails.
    public var handshakeTimeout: Duration
    /// An agent with no turn for this long is stopped (hibernated); its session stays.
    public var idleTimeout: Duration
    /// After `session/cancel`, how long the agent has to answer `cancelled`
    /// before its process group gets SIGTERM, then SIGKILL.
    public var cancelGrace: Duration
    /// Longest line accepted from the agent's stdout; a longer one ends the turn
    /// and kills the agent (memory stays bounded).
    public var maxLineBytes: Int

    public init(
        name: String,
        command: [String],
        cwd: String,
        environmentAllow: [String] = AgentConfiguration.defaultEnvironmentAllow,
        environmentSet: [String: String] = [:],
        permission: PermissionPolicy = .deny,
        handshakeTimeout: Duration = .seconds(30),
        idleTimeout: Duration = .seconds(600),
        cancelGrace: Duration = .seconds(5),
        maxLineBytes: Int = 8 << 20
    ) {
        self.name = name
        self.command = command
        self.cwd = cwd
        self.environmentAllow = environmentAllow
        self.environmentSet = environmentSet
        self.permission = permission
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.cancelGrace = cancelGrace
        self.maxLineBytes = maxLineBytes
    }

    /// A rule this configuration breaks: `field` is the file's key below
    /// `agents.NAME` (`command`, `environment.set.X`, …) so the caller can name it.
    public struct Violation: Error, Sendable, Hashable, CustomStringConvertible {
        public let field: String
        public let message: String
        public var description: String { "\(field): \(message)" }
    }

    /// Checks every rule; the first broken one is thrown.
    public func validate() throws(Violation) {
        if !Self.isValidName(name) {
            throw Violation(field: "name", message: "invalid agent name \"\(name.prefix(140))\": must match [A-Za-z0-9._-]{1,128}")
        }
        guard let program = command.first else {
            throw Violation(field: "command", message: "must not be empty (the program and its arguments)")
        }
        if program.isEmpty { throw Violation(field: "command", message: "the program (first element) must not be empty") }
        if command.contains(where: { $0.utf8.contains(0) }) {
            throw Violation(field: "command", message: "must not contain a NUL character")
        }
        if !cwd.hasPrefix("/") || cwd.utf8.contains(0) {
            throw Violation(field: "cwd", message: "must be an absolute path, not \"\(cwd.prefix(200))\"")
        }
        for variable in environmentAllow where !Self.isValidEnvironmentName(variable) {
            throw Violation(field: "environment.allow", message: Self.badEnvironmentName(variable))
        }
        for variable in environmentSet.keys.sorted() {
            let value = environmentSet[variable] ?? ""
            if !Self.isValidEnvironmentName(variable) {
                throw Violation(field: "environment.set", message: Self.badEnvironmentName(variable))
            }
            if value.utf8.contains(0) {
                throw Violation(field: "environment.set.\(variable)", message: "must not contain a NUL character")
            }
        }
        let durations: [(String, Duration)] = [
            ("handshake-timeout", handshakeTimeout), ("idle-timeout", idleTimeout), ("cancel-grace", cancelGrace),
        ]
        for (field, value) in durations where value <= .zero {
            throw Violation(field: field, message: "must be positive")
        }
        if !Self.maxLineBytesRange.contains(maxLineBytes) {
            throw Violation(
                field: "max-line-bytes",
                message: "must be between \(Self.maxLineBytesRange.lowerBound) and \(Self.maxLineBytesRange.upperBound)"
            )
        }
    }

    /// The task-queue name rule: `[A-Za-z0-9._-]{1,128}`.
    public static func isValidName(_ name: String) -> Bool {
        IDGenerator.isValidClientSessionID(name)
    }

    /// A portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
    public static func isValidEnvironmentName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
                true
            default:
                false
            }
        }
    }

    private static func badEnvironmentName(_ name: String) -> String {
        "invalid variable name \"\(name.prefix(140))\": must match [A-Za-z_][A-Za-z0-9_]*"
    }
}

/// The agents a server knows and the server-wide limit on their processes.
public struct AgentsConfiguration: Sendable, Hashable {
    /// Agent processes alive at once, over all sessions; past it the least
    /// recently active idle agent is hibernated.
    public var maxLiveAgents: Int
    /// By name.
    public var agents: [String: AgentConfiguration]

    public init(maxLiveAgents: Int = 16, agents: [String: AgentConfiguration] = [:]) {
        self.maxLiveAgents = maxLiveAgents
        self.agents = agents
    }

    /// Checks the server-wide limit and every agent; the violation's field is the
    /// file's key (`max-live-agents`, `agents.NAME.command`, …).
    public func validate() throws(AgentConfiguration.Violation) {
        if maxLiveAgents <= 0 { throw AgentConfiguration.Violation(field: "max-live-agents", message: "must be positive") }
        for name in agents.keys.sorted() {
            guard let agent = agents[name] else { continue }
            if agent.name != name {
                throw AgentConfiguration.Violation(field: "agents.\(name)", message: "is named \"\(agent.name)\"")
            }
            do throws(AgentConfiguration.Violation) {
                try agent.validate()
            } catch {
                let field = error.field == "name" ? "agents.\(name)" : "agents.\(name).\(error.field)"
                throw AgentConfiguration.Violation(field: field, message: error.message)
            }
        }
    }
}
