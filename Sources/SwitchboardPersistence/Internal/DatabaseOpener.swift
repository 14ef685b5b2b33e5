#if canImport(Glibc)
import Glibc
#endif
import GRDB
import Logging
import SwitchboardProtocol

/// Opens the state database, refusing — without changing a byte — any file
/// that is not a SQLite database, is corrupt, is some other program's database,
/// or has a schema newer than this build knows.
///
/// The checks run before GRDB opens the file for writing: first the 16-byte
/// header is read by hand, then a read-only connection runs `quick_check` and
/// reads `user_version`. Only then are the files made private (``PrivateFiles``)
/// and the pool opened (WAL; a new file with incremental auto-vacuum) and migrated.
enum DatabaseOpener {
    static let header = Array("SQLite format 3\0".utf8)

    static func open(
        path: String,
        migrations: [SchemaMigration],
        verify: Bool,
        logger: Logger
    ) throws(SwitchboardError) -> DatabasePool {
        let latest = Schema.latestVersion(of: migrations)
        let isNew = try !existsWithContent(path)
        if !isNew {
            try inspect(path: path, latest: latest, verify: verify)
        }
        // After the inspection (a refused file keeps even its mode), before
        // SQLite creates or writes anything.
        try PrivateFiles.secureDatabase(path: path, logger: logger)
        var configuration = Configuration()
        configuration.label = "switchboard.store"
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // WAL + NORMAL: a commit is atomic and survives a process crash;
            // batches that must survive a power loss are committed FULL.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            if isNew && !db.configuration.readonly {
                // Lets compaction (`incremental_vacuum`, see BatchWriter) give
                // pages back. It takes effect only before the file's first page
                // is written: here, on the writer's connection, before GRDB
                // switches the new file to WAL (which writes that page).
                try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
            }
        }
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            try Schema.migrator(migrations).migrate(pool)
            return pool
        } catch {
            throw SwitchboardError(
                code: .failedPrecondition,
                message: "cannot open state database \(path): \(error)",
                cause: error
            )
        }
    }

    private static func existsWithContent(_ path: String) throws(SwitchboardError) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw refusal(path, "is not a regular file")
        }
        return info.st_size > 0
    }

    private static func inspect(path: String, latest: Int, verify: Bool) throws(SwitchboardError) {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SwitchboardError(code: .failedPrecondition, message: "cannot read state database \(path): \(String(cString: strerror(errno)))")
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, 16) }
        close(fd)
        guard count == 16, bytes == header else {
            throw SwitchboardError(
                code: .dataLoss,
                message: "state database \(path) is not a SQLite database (bad header); refusing to open it (nothing was changed)"
            )
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.label = "switchboard.store.inspect"
        let found: (version: Int, tables: Int, migrations: Bool, check: [String])
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            found = try queue.read { db in
                let check = verify ? try String.fetchAll(db, sql: "PRAGMA quick_check") : ["ok"]
                let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
                let tables = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'table'") ?? 0
                let migrations = try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'grdb_migrations'"
                ) ?? 0
                return (version, tables, migrations > 0, check)
            }
        } catch {
            throw SwitchboardError(
                code: .dataLoss,
                message: "state database \(path) is corrupt or not a SQLite database (\(error)); refusing to open it (nothing was changed)",
                cause: error
            )
        }
        if found.check != ["ok"] {
            let detail = found.check.prefix(3).joined(separator: "; ")
            throw SwitchboardError(
                code: .dataLoss,
                message: "state database \(path) is corrupt (quick_check: \(detail)); refusing to open it (nothing was changed)"
            )
        }
        if found.version > latest {
            throw SwitchboardError(
                code: .failedPrecondition,
                message: "state database \(path) has schema version \(found.version), this switchboard knows up to \(latest); refusing to open it (nothing was changed)"
            )
        }
        if found.tables > 0 && !found.migrations {
            throw SwitchboardError(
                code: .failedPrecondition,
                message: "\(path) is a SQLite database but not a switchboard state database (no migration record); refusing to open it (nothing was changed)"
            )
        }
    }

    private static func refusal(_ path: String, _ what: String) -> SwitchboardError {
        SwitchboardError(code: .failedPrecondition, message: "state database \(path) \(what); refusing to open it (nothing was changed)")
    }
}
