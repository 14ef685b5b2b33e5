import ArgumentParser
import Foundation
import Logging
import SwitchboardCore
import SwitchboardPersistence

/// `serve` options about where sessions are kept and for how long (durable
/// sessions, docs/OPERATIONS.md), kept apart from the other `serve` options.
struct ServeStateOptions: ParsableArguments {
    private static let coreDefaults = CoreConfiguration()

    @Option(help: ArgumentHelp(
        "Where sessions and their turns are kept (SQLite); \"none\" keeps them in memory only "
            + "(default: $STATE_DIRECTORY, else $XDG_STATE_HOME/switchboard, else ~/.local/state/switchboard).",
        valueName: "dir"
    ))
    var stateDir: String?

    @Option(help: ArgumentHelp("Finished turns kept per session that sets none (default: \(coreDefaults.retainTurns)).", valueName: "n"))
    var retainTurns: UInt32?

    @Option(help: ArgumentHelp("Output bytes kept over a session's finished turns (default: \(coreDefaults.retainOutputBytes)).",
                               valueName: "bytes"))
    var retainOutputBytes: UInt64?

    @Option(help: ArgumentHelp("A finished turn is dropped after this long (default: \(DurationArgument.format(coreDefaults.retainAge))).",
                               valueName: "duration"),
            transform: DurationArgument.parse)
    var retainAge: Duration?

    func validate() throws {
        if let stateDir, stateDir.isEmpty { throw ValidationError("--state-dir must not be empty (use \"none\" for memory only)") }
        if retainTurns == 0 { throw ValidationError("--retain-turns must be positive") }
        if retainOutputBytes == 0 { throw ValidationError("--retain-output-bytes must be positive") }
        if let retainAge, retainAge <= .zero { throw ValidationError("--retain-age must be positive") }
    }

    func apply(to core: inout CoreConfiguration) {
        if let retainTurns { core.retainTurns = retainTurns }
        if let retainOutputBytes { core.retainOutputBytes = retainOutputBytes }
        if let retainAge { core.retainAge = retainAge }
    }

    /// The state directory to use, nil for memory only.
    func resolvedDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let stateDir { return stateDir == "none" ? nil : stateDir }
        // systemd's StateDirectory= (several are colon-separated: the first is ours).
        if let systemd = environment["STATE_DIRECTORY"]?.split(separator: ":").first, !systemd.isEmpty {
            return String(systemd)
        }
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") { return xdg + "/switchboard" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.local/state/switchboard" }
        return nil
    }

    /// The outermost directory of the state directory's path that does not exist
    /// yet (what opening the store would create), nil when it exists already or
    /// sessions are kept in memory.
    func firstMissingDirectory() -> String? {
        guard let directory = resolvedDirectory() else { return nil }
        var missing: String?
        var path = directory
        while !path.isEmpty, path != "/", !FileManager.default.fileExists(atPath: path) {
            missing = path
            path = (path as NSString).deletingLastPathComponent
        }
        return missing
    }

    /// Removes a directory this start created (``firstMissingDirectory()``) when
    /// the start failed before serving, so a refused start leaves nothing behind.
    static func removeCreatedDirectory(_ directory: String?, logger: Logger) {
        guard let directory else { return }
        do {
            try FileManager.default.removeItem(atPath: directory)
        } catch {
            logger.warning("cannot remove the state directory this start created: \(error)", metadata: ["path": "\(directory)"])
        }
    }

    /// Opens the store (blocking file work: at start, before serving).
    func openStore(logger: Logger) throws -> any SessionStore {
        guard let directory = resolvedDirectory() else {
            if stateDir == nil {
                logger.warning("no state directory ($STATE_DIRECTORY, $XDG_STATE_HOME and $HOME unset): sessions are kept in memory only")
            }
            return InMemorySessionStore()
        }
        return try SQLiteSessionStore.open(directory: directory, logger: logger)
    }
}
