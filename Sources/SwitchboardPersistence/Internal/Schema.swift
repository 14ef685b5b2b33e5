import GRDB

/// One versioned step of the schema. Version N's migration turns a version N-1
/// database into a version N one; `PRAGMA user_version` records the result.
package struct SchemaMigration: Sendable {
    package var version: Int
    package var name: String
    package var apply: @Sendable (Database) throws -> Void

    package init(version: Int, name: String, apply: @escaping @Sendable (Database) throws -> Void) {
        self.version = version
        self.name = name
        self.apply = apply
    }
}

/// The store's schema, its versions and the migrator that applies them.
///
/// Adding version 2 is one more element of ``migrations``; the migrator (GRDB's
/// `DatabaseMigrator`, which records applied steps in `grdb_migrations`) runs
/// each missing step in its own transaction and sets `user_version` in the same
/// transaction, so a crash mid-migration leaves the previous version intact.
package enum Schema {
    package static let migrations: [SchemaMigration] = [
        SchemaMigration(version: 1, name: "initial", apply: createVersion1),
    ]

    /// The newest version in `migrations`.
    static func latestVersion(of migrations: [SchemaMigration]) -> Int {
        migrations.map(\.version).max() ?? 0
    }

    static func migrator(_ migrations: [SchemaMigration]) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in migrations.sorted(by: { $0.version < $1.version }) {
            let version = migration.version
            let apply = migration.apply
            migrator.registerMigration("v\(version)-\(migration.name)") { db in
                try apply(db)
                try db.execute(sql: "PRAGMA user_version = \(version)")
            }
        }
        return migrator
    }

    /// Version 1.
    ///
    /// - `turns.position` is the store-wide ordering key (AUTOINCREMENT, so a
    ///   deleted turn's position is never reused and page tokens stay valid);
    ///   the store assigns it itself when a turn is accepted, so reads can merge
    ///   turns that are still in the pending batch.
    /// - `output` has one row per turn per batch (an ``OutputSegment``: the
    ///   chunks' bytes concatenated, their sequences and lengths in `layout`);
    ///   "chunks after N" are the rows with `last_sequence > N`, one index range.
    /// - A turn's prompt is in `turn_prompts`, not in `turns`: SQLite rewrites
    ///   a whole row on UPDATE, overflow pages included, and a turn's row is
    ///   updated once per batch while it streams (its counters); with a 3 MB
    ///   prompt in the row that was most of the writer's I/O.
    /// - `sessions.turns_completed` counts the turns that started and ended
    ///   (see ``BatchApplier``): retention deletes turns, the count stays.
    /// - Deleting a session cascades to its labels, turns and output.
    @Sendable
    static func createVersion1(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE sessions (
                id TEXT PRIMARY KEY NOT NULL,
                owner_uid INTEGER NOT NULL,
                backend TEXT NOT NULL,
                idle_timeout_ms INTEGER NOT NULL,
                turn_deadline_ms INTEGER NOT NULL,
                stall_timeout_ms INTEGER NOT NULL,
                max_queued_prompts INTEGER NOT NULL,
                when_no_worker INTEGER NOT NULL,
                retain_turns INTEGER NOT NULL,
                retain_output_bytes INTEGER NOT NULL,
                retain_age_ms INTEGER NOT NULL,
                created_at_ms INTEGER NOT NULL,
                last_activity_ms INTEGER NOT NULL,
                turns_completed INTEGER NOT NULL DEFAULT 0
            );
            CREATE TABLE session_labels (
                session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                ordinal INTEGER NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (session_id, ordinal)
            ) WITHOUT ROWID;
            CREATE TABLE turns (
                position INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                turn_id TEXT NOT NULL,
                state INTEGER NOT NULL,
                accepted_at_ms INTEGER NOT NULL,
                started_at_ms INTEGER NOT NULL DEFAULT 0,
                code INTEGER,
                message TEXT,
                stop_reason TEXT,
                ended_at_ms INTEGER,
                chunks INTEGER NOT NULL DEFAULT 0,
                bytes INTEGER NOT NULL DEFAULT 0,
                last_sequence INTEGER NOT NULL DEFAULT 0,
                output_dropped INTEGER NOT NULL DEFAULT 0
            );
            CREATE UNIQUE INDEX turns_by_session ON turns(session_id, turn_id);
            CREATE INDEX turns_by_session_position ON turns(session_id, position);
            CREATE INDEX turns_unfinished ON turns(state) WHERE state <> 3;
            CREATE TABLE turn_prompts (
                turn INTEGER PRIMARY KEY REFERENCES turns(position) ON DELETE CASCADE,
                prompt TEXT NOT NULL
            );
            CREATE TABLE output (
                turn INTEGER NOT NULL REFERENCES turns(position) ON DELETE CASCADE,
                first_sequence INTEGER NOT NULL,
                last_sequence INTEGER NOT NULL,
                chunks INTEGER NOT NULL,
                layout BLOB NOT NULL,
                data BLOB NOT NULL
            );
            CREATE UNIQUE INDEX output_by_turn ON output(turn, last_sequence);
            """)
    }
}
