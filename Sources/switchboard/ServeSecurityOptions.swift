import ArgumentParser
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer

/// `serve` options about who may do what and the per-uid limits (docs/SECURITY.md),
/// kept apart from the other `serve` options so the access rules read in one place.
struct ServeSecurityOptions: ParsableArguments {
    private static let coreDefaults = CoreConfiguration()
    private static let serverDefaults = ServerConfiguration(socketPath: "")

    @Option(help: ArgumentHelp("Access policy file: lines of allow-uid/allow-gid/worker-uid/worker-gid/admin-uid/admin-gid = VALUE[, VALUE…] (see docs/SECURITY.md).",
                               valueName: "file"))
    var policy: String?

    @Option(help: ArgumentHelp("Only these uids (and the gids of --allow-gid, workers and admins) may connect; repeatable (default: anyone who can open the socket).",
                               valueName: "uid|user"))
    var allowUID: [String] = []

    @Option(help: ArgumentHelp("Peers with this primary gid may connect; repeatable.", valueName: "gid|group"))
    var allowGID: [String] = []

    @Option(help: ArgumentHelp("This uid may register workers; repeatable (default: administrators only).", valueName: "uid|user"))
    var workerUID: [String] = []

    @Option(help: ArgumentHelp("Peers with this primary gid may register workers; repeatable.", valueName: "gid|group"))
    var workerGID: [String] = []

    @Option(help: ArgumentHelp("This uid is an administrator (besides root and the server's own uid); repeatable.", valueName: "uid|user"))
    var adminUID: [String] = []

    @Option(help: ArgumentHelp("Peers with this primary gid are administrators; repeatable.", valueName: "gid|group"))
    var adminGID: [String] = []

    @Option(help: ArgumentHelp("Connections one non-admin uid may hold; 0 = no per-uid limit (default: \(serverDefaults.maxConnectionsPerUID)).",
                               valueName: "n"))
    var maxConnectionsPerUID: Int?

    @Option(help: ArgumentHelp("Sessions one non-admin uid may own; 0 = no per-uid limit (default: \(coreDefaults.maxSessionsPerUID)).",
                               valueName: "n"))
    var maxSessionsPerUID: Int?

    @Option(help: ArgumentHelp("A connection with no open call that sends nothing for this long is closed; 0 = never (default: \(DurationArgument.format(serverDefaults.idleConnectionTimeout))).",
                               valueName: "duration"),
            transform: DurationArgument.parse)
    var idleConnectionTimeout: Duration?

    func validate() throws {
        if let maxConnectionsPerUID, maxConnectionsPerUID < 0 {
            throw ValidationError("--max-connections-per-uid must not be negative")
        }
        if let maxSessionsPerUID, maxSessionsPerUID < 0 {
            throw ValidationError("--max-sessions-per-uid must not be negative")
        }
        _ = try accessPolicy()
    }

    /// The policy from `--policy` plus the flags. A bad file or an unknown user or
    /// group name is a usage error naming it.
    func accessPolicy() throws(ValidationError) -> AccessPolicy {
        do throws(SwitchboardError) {
            var policy = try self.policy.map { path throws(SwitchboardError) in try AccessPolicy.load(path: path) } ?? AccessPolicy()
            let flags: [(String, [String])] = [
                ("allow-uid", allowUID), ("allow-gid", allowGID),
                ("worker-uid", workerUID), ("worker-gid", workerGID),
                ("admin-uid", adminUID), ("admin-gid", adminGID),
            ]
            for (key, values) in flags {
                for value in values {
                    do throws(SwitchboardError) {
                        try policy.add(key: key, value: value)
                    } catch {
                        throw SwitchboardError(code: .invalidArgument, message: "--\(key): \(error.message)")
                    }
                }
            }
            return policy
        } catch {
            throw ValidationError(error.message)
        }
    }

    func apply(to core: inout CoreConfiguration) {
        if let maxSessionsPerUID { core.maxSessionsPerUID = maxSessionsPerUID }
    }

    func apply(to server: inout ServerConfiguration) throws {
        server.accessPolicy = try accessPolicy()
        if let maxConnectionsPerUID { server.maxConnectionsPerUID = maxConnectionsPerUID }
        if let idleConnectionTimeout { server.idleConnectionTimeout = idleConnectionTimeout }
    }
}
