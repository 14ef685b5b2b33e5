import Foundation
import GRDB
import SwitchboardCore
@testable import SwitchboardPersistence
import SwitchboardProtocol
import Testing

@Suite("SQLiteSessionStore schema versions")
struct MigrationTests {
    /// A test-only version 2: what a real one looks like (one more element).
    static let withVersion2 = Schema.migrations + [
        SchemaMigration(version: 2, name: "session-notes") { db in
            try db.execute(sql: "ALTER TABLE sessions ADD COLUMN note TEXT NOT NULL DEFAULT ''")
        },
    ]

    private func options(_ migrations: [SchemaMigration]) -> SQLiteSessionStore.Options {
        var options = SQLiteSessionStore.Options(batchInterval: .milliseconds(5))
        options.migrations = migrations
        return options
    }

    private func schemaState(_ directory: ScratchDirectory) throws -> [Int] {
        try sqliteScalars(directory.database, ["PRAGMA user_version", "SELECT count(*) FROM grdb_migrations"])
    }

    @Test("a version 1 database is migrated to version 2 with its data, once; version 1 code then refuses it")
    func migrateThenRefuseDowngrade() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        // Build a version 1 database with content.
        do {
            let store = try openStore(directory, options: options(Schema.migrations))
            try await store.createSession(makeSession("s-1", labels: [Label(key: "k", value: "v")]))
            store.recordTurn(session: "s-1", turn: "t-1", chunks: ["old", "data"])
            try await store.close()
        }
        #expect(try schemaState(directory) == [1, 1])
        // Re-opening version 1 with version 1 is idempotent.
        do {
            let store = try openStore(directory, options: options(Schema.migrations))
            try await store.close()
        }
        #expect(try schemaState(directory) == [1, 1])
        // The current code plus version 2 migrates it and keeps everything.
        for _ in 0..<2 {
            let store = try openStore(directory, options: options(Self.withVersion2))
            let loaded = try await store.load(interruptedMessage: "x")
            #expect(loaded.map(\.id) == ["s-1"])
            #expect(loaded.first?.labels == [Label(key: "k", value: "v")])
            #expect(loaded.first?.turnsCompleted == 1)
            let output = try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: 0, limit: 1000)
            #expect(output.map(\.data) == [Array("old".utf8), Array("data".utf8)])
            try await store.close()
            #expect(try schemaState(directory) == [2, 2])
        }
        let notes = try sqliteScalars(directory.database, ["SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'note'"])
        #expect(notes == [1])
        // Code that knows only version 1 refuses the version 2 file and leaves it alone.
        let before = try fileBytes(directory.database)
        do {
            _ = try openStore(directory, options: options(Schema.migrations))
            Issue.record("a version 1 build opened a version 2 database")
        } catch let error as SwitchboardError {
            #expect(error.message == "state database \(directory.database) has schema version 2, this switchboard knows up to 1; refusing to open it (nothing was changed)")
        }
        #expect(try fileBytes(directory.database) == before)
    }
}
