import SwitchboardProtocol

/// The backends a server offers, by the name a session asks for.
///
/// `echo` is always there; `exec` when a command is configured. Names starting with
/// `worker:` are not looked up here: the session registry resolves them to a
/// ``WorkerBackend`` of its ``WorkerPools``.
public struct BackendRegistry: Sendable {
    private var backends: [String: any Backend]

    public init(echo: EchoBackend = EchoBackend(), exec: ExecBackend? = nil) {
        backends = ["echo": echo]
        if let exec { backends["exec"] = exec }
    }

    /// Adds or replaces a backend under `name` (tests, later backend kinds).
    package mutating func register(_ backend: any Backend, named name: String) {
        backends[name] = backend
    }

    /// The known backend names, sorted.
    public var names: [String] { backends.keys.sorted() }

    /// The backend called `name`; INVALID_ARGUMENT naming the known ones otherwise.
    public func backend(named name: String) throws(SwitchboardError) -> any Backend {
        if let backend = backends[name] { return backend }
        if name.hasPrefix("worker:") {
            throw SwitchboardError(code: .invalidArgument, message: "backend \"\(name)\": worker backends are resolved by the session registry")
        }
        throw SwitchboardError(
            code: .invalidArgument,
            message: "unknown backend \"\(name)\"; known backends: \(names.joined(separator: ", "))"
        )
    }
}
