import ArgumentParser
import Configuration
import Foundation
import SwitchboardCore
import Yams

/// The `serve --config FILE` file (JSON for `.json`, YAML for `.yaml`/`.yml`),
/// read once at start with swift-configuration's file snapshots.
///
/// Keys are the `serve` flag names without their leading dashes (`state-dir`,
/// `max-connections`), plus `max-live-agents` and the `agents` section. Every
/// value is checked here, so a bad file is a usage error naming the file and the
/// key before anything touches the disk or the socket. swift-configuration reads
/// values by key but cannot list the keys a file holds, so the file is also
/// parsed into a ``KeyTree`` (Foundation's JSON parser, Yams for YAML: the same
/// parsers the snapshots use): it answers which agents and variables are named
/// and which keys nobody asked for (unknown keys are refused, so a typo is never
/// silently ignored).
struct ServeConfigFile {
    /// The shape of the file: which keys hold a mapping and which a value.
    indirect enum KeyTree {
        /// `boolean`: a JSON `true`/`false` is (or is in) the value, which
        /// swift-configuration would read as the number 1 or 0.
        case value(boolean: Bool)
        case mapping([String: KeyTree])

        func subtree(_ path: [String]) -> KeyTree? {
            var node = self
            for component in path {
                guard case .mapping(let children) = node, let child = children[component] else { return nil }
                node = child
            }
            return node
        }

        /// Every path that ends in a value (or an empty mapping), sorted.
        func leafPaths(prefix: [String] = []) -> [[String]] {
            switch self {
            case .value:
                return [prefix]
            case .mapping(let children) where children.isEmpty:
                return prefix.isEmpty ? [] : [prefix]
            case .mapping(let children):
                return children.keys.sorted().flatMap { children[$0]!.leafPaths(prefix: prefix + [$0]) }
            }
        }
    }

    let path: String
    private let snapshot: any ConfigSnapshot
    private let tree: KeyTree
    /// Paths read so far, as values and as mappings: any other path of ``tree``
    /// is an unknown key.
    private var known: Set<[String]> = []
    private var knownMappings: Set<[String]> = []

    /// Reads and parses `path`; unreadable, unknown format or unparsable is a
    /// usage error naming the file.
    init(path: String) throws(ValidationError) {
        self.path = path
        let isYAML: Bool
        switch (path as NSString).pathExtension.lowercased() {
        case "json": isYAML = false
        case "yaml", "yml": isYAML = true
        default:
            throw ValidationError("--config \(path): unknown file format: the name must end in .json, .yaml or .yml")
        }
        let bytes = try Self.readFile(path)
        let data = Data(bytes)
        do {
            if isYAML {
                snapshot = try YAMLSnapshot(data: bytes.span.bytes, providerName: path, parsingOptions: .default)
                tree = try Self.yamlTree(data)
            } else {
                snapshot = try JSONSnapshot(data: bytes.span.bytes, providerName: path, parsingOptions: .default)
                tree = try Self.jsonTree(data)
            }
        } catch {
            throw ValidationError("--config \(path): not a valid \(isYAML ? "YAML" : "JSON") configuration: \(Self.describe(error))")
        }
    }

    // MARK: Typed reads (each names the key in its error)

    /// A usage error about `key` of this file.
    func failure(_ key: [String], _ message: String) -> ValidationError {
        ValidationError("--config \(path): \(key.joined(separator: ".")): \(message)")
    }

    private mutating func lookup(_ key: [String], _ type: ConfigType, expected: String) throws(ValidationError) -> ConfigContent? {
        known.insert(key)
        guard let node = tree.subtree(key) else { return nil }
        if case .mapping = node { throw failure(key, "expected \(expected), not a mapping") }
        if case .value(boolean: true) = node, type != .string, type != .stringArray {
            throw failure(key, "expected \(expected), not true or false")
        }
        do {
            return try snapshot.value(forKey: AbsoluteConfigKey(key), type: type).value?.content
        } catch {
            throw failure(key, "expected \(expected)")
        }
    }

    mutating func string(_ key: [String]) throws(ValidationError) -> String? {
        guard case .string(let value)? = try lookup(key, .string, expected: "a string") else { return nil }
        return value
    }

    mutating func nonEmptyString(_ key: [String]) throws(ValidationError) -> String? {
        let value = try string(key)
        if let value, value.isEmpty { throw failure(key, "must not be empty") }
        return value
    }

    mutating func int(_ key: [String]) throws(ValidationError) -> Int? {
        guard case .int(let value)? = try lookup(key, .int, expected: "an integer") else { return nil }
        return value
    }

    mutating func positiveInt(_ key: [String]) throws(ValidationError) -> Int? {
        let value = try int(key)
        if let value, value <= 0 { throw failure(key, "must be positive") }
        return value
    }

    mutating func nonNegativeInt(_ key: [String]) throws(ValidationError) -> Int? {
        let value = try int(key)
        if let value, value < 0 { throw failure(key, "must not be negative") }
        return value
    }

    /// An integer that fits `T` and is at least `minimum`.
    mutating func unsigned<T: FixedWidthInteger & UnsignedInteger>(_ key: [String], minimum: T) throws(ValidationError) -> T? {
        guard let value = try int(key) else { return nil }
        guard let fitted = T(exactly: value), fitted >= minimum else {
            throw failure(key, "must be between \(minimum) and \(T.max)")
        }
        return fitted
    }

    /// A duration in the flags' syntax (`"30s"`, `"250ms"`), or a number of seconds.
    mutating func duration(_ key: [String]) throws(ValidationError) -> Duration? {
        known.insert(key)
        guard let node = tree.subtree(key) else { return nil }
        if case .value(boolean: true) = node { throw failure(key, "expected a duration, not true or false") }
        let text: String
        if let number = try? snapshot.value(forKey: AbsoluteConfigKey(key), type: .double).value?.content,
            case .double(let seconds) = number {
            text = "\(seconds)"
        } else {
            guard let string = try self.string(key) else { return nil }
            text = string
        }
        do {
            return try DurationArgument.parse(text)
        } catch {
            throw failure(key, error.message)
        }
    }

    mutating func positiveDuration(_ key: [String]) throws(ValidationError) -> Duration? {
        let value = try duration(key)
        if let value, value <= .zero { throw failure(key, "must be positive") }
        return value
    }

    /// A list of strings (numbers in it are taken as their decimal text, so
    /// `allow-uid: [1000]` works).
    mutating func stringList(_ key: [String]) throws(ValidationError) -> [String]? {
        known.insert(key)
        guard let node = tree.subtree(key) else { return nil }
        if case .value(boolean: true) = node { throw failure(key, "expected a list of strings, not true or false") }
        if let numbers = try? snapshot.value(forKey: AbsoluteConfigKey(key), type: .intArray).value?.content,
            case .intArray(let values) = numbers {
            return values.map(String.init)
        }
        guard case .stringArray(let values)? = try lookup(key, .stringArray, expected: "a list of strings") else { return nil }
        return values
    }

    /// The names of the mapping at `key` (`agents`, `environment.set`), sorted;
    /// nil when the key is absent, an error when it holds a value.
    mutating func mappingKeys(_ key: [String]) throws(ValidationError) -> [String]? {
        knownMappings.insert(key)
        switch tree.subtree(key) {
        case nil:
            return nil
        case .value?:
            throw failure(key, "expected a mapping")
        case .mapping(let children)?:
            return children.keys.sorted()
        }
    }

    /// Refuses the first key of the file that no read asked for (a typo, or an
    /// option this version does not have).
    func rejectUnknownKeys() throws(ValidationError) {
        for leaf in tree.leafPaths() {
            if !known.contains(leaf), !knownMappings.contains(leaf) {
                throw ValidationError("--config \(path): unknown key \"\(leaf.joined(separator: "."))\"")
            }
        }
    }

    // MARK: The agents section

    /// `max-live-agents` and `agents.NAME.*`, validated by ``AgentsConfiguration``.
    mutating func agents(defaultDirectory: String) throws(ValidationError) -> AgentsConfiguration {
        var configuration = AgentsConfiguration()
        if let cap = try int(["max-live-agents"]) { configuration.maxLiveAgents = cap }
        for name in try mappingKeys(["agents"]) ?? [] {
            let base = ["agents", name]
            if case .value? = tree.subtree(base) { throw failure(base, "expected a mapping") }
            guard let command = try stringList(base + ["command"]) else {
                throw failure(base + ["command"], "missing: every agent needs its command (argv, a list of strings)")
            }
            var agent = AgentConfiguration(name: name, command: command, cwd: try nonEmptyString(base + ["cwd"]) ?? defaultDirectory)
            if let allow = try stringList(base + ["environment", "allow"]) { agent.environmentAllow = allow }
            for variable in try mappingKeys(base + ["environment", "set"]) ?? [] {
                agent.environmentSet[variable] = try string(base + ["environment", "set", variable])
            }
            _ = try mappingKeys(base + ["environment"])
            if let text = try string(base + ["permission"]) {
                guard let policy = AgentConfiguration.PermissionPolicy(rawValue: text) else {
                    throw failure(base + ["permission"], "expected allow or deny, not \"\(text.prefix(100))\"")
                }
                agent.permission = policy
            }
            if let value = try duration(base + ["handshake-timeout"]) { agent.handshakeTimeout = value }
            if let value = try duration(base + ["idle-timeout"]) { agent.idleTimeout = value }
            if let value = try duration(base + ["cancel-grace"]) { agent.cancelGrace = value }
            if let value = try int(base + ["max-line-bytes"]) { agent.maxLineBytes = value }
            configuration.agents[name] = agent
        }
        do throws(AgentConfiguration.Violation) {
            try configuration.validate()
        } catch {
            throw ValidationError("--config \(path): \(error.field): \(error.message)")
        }
        return configuration
    }

    // MARK: Parsing the key tree

    private static func jsonTree(_ data: Data) throws -> KeyTree {
        // Foundation hands JSON booleans out as NSNumbers of type "c" (char).
        func isBoolean(_ value: Any) -> Bool {
            (value as? NSNumber).map { String(cString: $0.objCType) == "c" } ?? false
        }
        func node(_ value: Any) -> KeyTree {
            if let array = value as? [Any] { return .value(boolean: array.contains(where: isBoolean)) }
            guard let object = value as? [String: Any] else { return .value(boolean: isBoolean(value)) }
            return .mapping(object.mapValues(node))
        }
        return node(try JSONSerialization.jsonObject(with: data))
    }

    private static func yamlTree(_ data: Data) throws -> KeyTree {
        func node(_ value: Yams.Node) -> KeyTree {
            guard let mapping = value.mapping else { return .value(boolean: false) }
            var children: [String: KeyTree] = [:]
            for (key, child) in mapping {
                children[key.string ?? "\(key)"] = node(child)
            }
            return .mapping(children)
        }
        guard let root = try Yams.Parser(yaml: data).singleRoot() else { return .mapping([:]) }
        return node(root)
    }

    /// A configuration file larger than this is refused (it is a mistake, not a configuration).
    static let maxFileBytes = 1 << 20

    /// The file's bytes; a failure is a usage error with the system's reason.
    private static func readFile(_ path: String) throws(ValidationError) -> [UInt8] {
        func failure(_ reason: String) -> ValidationError {
            ValidationError("--config \(path): cannot read the file: \(reason)")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure(String(cString: strerror(errno)))
            }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
            if bytes.count > maxFileBytes { throw failure("larger than \(maxFileBytes) bytes") }
        }
    }

    /// A parser's error as one line.
    private static func describe(_ error: any Error) -> String {
        // Foundation's JSON errors carry the useful part in their debug description.
        let text = ((error as NSError).userInfo["NSDebugDescription"] as? String) ?? String(describing: error)
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}
