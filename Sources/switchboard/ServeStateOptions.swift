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

    /// The directories of the state directory's path that do not exist yet (what
    /// opening the store would create), outermost first; empty when it exists
    /// already or sessions are kept in memory.
    func missingDirectories() -> [String] {
        guard let directory = resolvedDirectory() else { return [] }
        var missing: [String] = []
        var path = directory
        while !path.isEmpty, path != "/", path != ".", !FileManager.default.fileExists(atPath: path) {
            missing.insert(path, at: 0)
            path = (path as NSString).deletingLastPathComponent
        }
        return missing
    }

    /// Undoes what a start that never served created in a state directory it
    /// held (the caller ran with the store's lock, so no other server was using
    /// it): the store's own files, then each directory the start created,
    /// innermost first. `rmdir` leaves any directory that holds something else,
    /// so nothing another program put there is ever removed.
    static func removeCreated(_ directories: [String], logger: Logger) {
        guard let stateDirectory = directories.last else { return }
        let base = SQLiteSessionStore.databaseFileName
        for name in [base, base + "-wal", base + "-shm", base + "-journal", "lock"] {
            unlink(stateDirectory + "/" + name)
        }
        for directory in directories.reversed() where rmdir(directory) != 0 {
            logger.warning("cannot remove the state directory this start created: \(String(cString: strerror(errno)))",
                           metadata: ["path": "\(directory)"])
            return
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
