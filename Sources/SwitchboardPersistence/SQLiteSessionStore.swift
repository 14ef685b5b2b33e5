import GRDB
import Logging
import Synchronization
import SwitchboardCore
import SwitchboardProtocol

/// The on-disk ``SessionStore``: an SQLite database (WAL) in a state directory,
/// through GRDB.
///
/// - Sessions are created and deleted durably (the call returns after a
///   FULL-synchronous commit).
/// - `record…` calls append to an in-memory batch and return; one writer thread
///   commits batches (see ``Options``). A crash loses at most the batch not yet
///   committed; `load` then marks the turns that were running as ABORTED.
/// - Reads run on GRDB's reader connections (never the caller's thread) and
///   merge what is still in the batch, so they see everything recorded.
///
/// The directory is claimed with a record lock on its `lock` file: a second server
/// on the same directory is refused. See docs/ARCHITECTURE.md, "Persistence".
public final class SQLiteSessionStore: SessionStore {
    public struct Options: Sendable {
        /// A batch is committed when it holds this many output chunks (a fast
        /// stream fills 4096 in about the interval, so commits stay near 50/s
        /// instead of one per few milliseconds: each commit rewrites the same
        /// few b-tree pages into the WAL, and the checkpoint copies them again),
        public var batchMaxChunks: Int
        /// or this many output bytes,
        public var batchMaxBytes: Int
        /// or when its oldest change has waited this long.
        public var batchInterval: Duration
        /// When more output than this waits for the writer (a slow disk), a
        /// warning is logged (once each time the writer falls behind).
        public var backlogWarningBytes: Int
        /// While more output than this is recorded and not yet committed,
        /// ``SessionStore/waitForRoom()`` suspends its callers: the turns
        /// producing output wait for the disk instead of growing memory without
        /// bound. Nothing is dropped. It must leave room for a batch being
        /// collected while another commits: a value not above `batchMaxBytes`
        /// is raised to twice `batchMaxBytes`.
        public var backlogLimitBytes: Int
        /// Run `PRAGMA quick_check` before opening an existing database.
        public var verifyOnOpen: Bool
        /// The schema steps this build knows (tests add a version 2).
        package var migrations: [SchemaMigration] = Schema.migrations
        /// Test only: runs on the writer thread before each batch is written; a
        /// test blocks in it to play a disk that does not keep up.
        package var beforeWrite: (@Sendable () -> Void)?

        public init(
            batchMaxChunks: Int = 4096,
            batchMaxBytes: Int = 1 << 20,
            batchInterval: Duration = .milliseconds(20),
            backlogWarningBytes: Int = 64 << 20,
            backlogLimitBytes: Int = 64 << 20,
            verifyOnOpen: Bool = true
        ) {
            self.batchMaxChunks = batchMaxChunks
            self.batchMaxBytes = batchMaxBytes
            self.batchInterval = batchInterval
            self.backlogWarningBytes = backlogWarningBytes
            self.backlogLimitBytes = backlogLimitBytes
            self.verifyOnOpen = verifyOnOpen
        }
    }

    /// The database file's path.
    public let location: String
    let pool: DatabasePool
    let writer: BatchWriter
    let logger: Logger
    private let lock: StateDirectoryLock
    private let closed = Atomic<Bool>(false)

    /// The database file inside a state directory.
    public static let databaseFileName = "switchboard.sqlite"

    private init(location: String, pool: DatabasePool, writer: BatchWriter, lock: StateDirectoryLock, logger: Logger) {
        self.location = location
        self.pool = pool
        self.writer = writer
        self.lock = lock
        self.logger = logger
    }

    /// Claims `directory` (created 0700 when missing) and opens or creates its
    /// database, kept 0600 (see ``PrivateFiles``), migrating an older schema. Blocking (file I/O): call it at
    /// start, not on an event loop. Throws FAILED_PRECONDITION when another
    /// switchboard holds the directory or the schema is newer than this build's,
    /// DATA_LOSS for a file that is not a SQLite database or is corrupt; such a
    /// file is left exactly as it was.
    public static func open(directory: String, logger: Logger, options: Options = Options()) throws -> SQLiteSessionStore {
        let lock = try StateDirectoryLock.acquire(directory: directory)
        let path = directory + "/" + databaseFileName
        PrivateFiles.warnIfShared(directory: directory, logger: logger)
        do {
            let pool = try DatabaseOpener.open(
                path: path, migrations: options.migrations, verify: options.verifyOnOpen, logger: logger
            )
            let (lastPosition, autoVacuum) = try pool.read { db in
                (
                    try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'turns'") ?? 0,
                    try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") ?? 0
                )
            }
            let maxBytes = max(1, options.batchMaxBytes)
            let writer = BatchWriter(
                pool: pool,
                lastPosition: UInt64(clamping: lastPosition),
                // 2 = incremental: only then does `incremental_vacuum` give pages back.
                compacts: autoVacuum == 2,
                parameters: .init(
                    maxChunks: max(1, options.batchMaxChunks),
                    maxBytes: maxBytes,
                    interval: options.batchInterval,
                    backlogWarningBytes: options.backlogWarningBytes,
                    backlogLimitBytes: options.backlogLimitBytes > maxBytes
                        ? options.backlogLimitBytes : (maxBytes > Int.max / 2 ? Int.max : maxBytes * 2),
                    beforeWrite: options.beforeWrite
                ),
                logger: logger
            )
            try writer.start()
            logger.info("session store opened", metadata: ["path": "\(path)"])
            return SQLiteSessionStore(location: path, pool: pool, writer: writer, lock: lock, logger: logger)
        } catch {
            lock.release()
            throw error
        }
    }

    func checkOpen() throws(SwitchboardError) {
        if closed.load(ordering: .acquiring) { throw BatchWriter.closedError }
    }

    // MARK: - Sessions

    public func createSession(_ session: StoredSession) async throws {
        try checkOpen()
        try await writer.writeDurably { .createSession(session, ticket: $0) }
    }

    /// Idempotent: deleting an id the store does not have succeeds.
    public func deleteSession(id: String) async throws {
        try checkOpen()
        try await writer.writeDurably { .deleteSession(id, ticket: $0) }
    }

    // MARK: - Recording (never waits for the disk)

    public func recordActivity(sessionID: String, atMs: UInt64) {
        writer.recordActivity(sessionID: sessionID, atMs: atMs)
    }

    public func recordTurnAccepted(_ turn: StoredTurn) {
        writer.recordAccepted(turn)
    }

    public func recordTurnStarted(sessionID: String, turnID: String, atMs: UInt64) {
        writer.recordStarted(TurnKey(sessionID: sessionID, turnID: turnID), atMs: atMs)
    }

    public func recordOutput(sessionID: String, turnID: String, chunk: OutputChunk) {
        writer.recordOutput(TurnKey(sessionID: sessionID, turnID: turnID), chunk: chunk)
    }

    public func recordTurnFinished(sessionID: String, turnID: String, ending: StoredTurnEnding) {
        writer.recordFinished(TurnKey(sessionID: sessionID, turnID: turnID), ending: ending)
    }

    /// Suspends while more than `Options.backlogLimitBytes` of output wait for
    /// the writer; resumed when a commit brings the backlog back to the limit,
    /// when the store closes, or when the caller is cancelled.
    public func waitForRoom() async throws {
        try await writer.waitForRoom()
    }

    public var writeFailure: StoreWriteFailure? {
        writer.writeFailure
    }

    /// Output bytes recorded and not yet committed, and callers suspended in
    /// ``waitForRoom()`` (tests).
    package var backlogStatus: (bytes: Int, waiters: Int) {
        writer.backlogStatus
    }

    // MARK: - Lifecycle

    public func flush() async throws {
        try checkOpen()
        try await writer.flush()
    }

    /// At once when none of the turn's records waits to be written (a turn
    /// committed long ago, even while the disk is full), else ``flush()``.
    public func flush(sessionID: String, turnID: String) async throws {
        try checkOpen()
        guard writer.hasPending(sessionID: sessionID, turnID: turnID) else { return }
        try await writer.flush()
    }

    /// Test seam, at the SQLite layer: caps the database at its current size
    /// plus `extraPages` pages (`PRAGMA max_page_count` on the writer's
    /// connection), so that a write that needs more fails with SQLITE_FULL,
    /// "database or disk is full", as on a full disk; nil lifts the cap.
    package func limitDatabaseGrowth(extraPages: Int?) async throws {
        try await pool.writeWithoutTransaction { db in
            if let extraPages {
                let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                try db.execute(sql: "PRAGMA max_page_count = \(pages + max(0, extraPages))")
            } else {
                try db.execute(sql: "PRAGMA max_page_count = 4294967294")
            }
        }
    }

    /// Writes what is pending, stops the writer, closes the database and
    /// releases the directory. A second `close` does nothing.
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await writer.close()
        defer { lock.release() }
        // Copy the WAL into the database file: a cleanly closed store is one file
        // (GRDB closes its writer before its read-only readers, so SQLite's own
        // checkpoint-on-last-close does not happen).
        do {
            try await pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        } catch {
            logger.warning("session store: checkpoint at close failed: \(error)")
        }
        try pool.close()
        logger.info("session store closed", metadata: ["path": "\(location)"])
    }
}
