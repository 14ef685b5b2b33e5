import Foundation
import GRDB
import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol
import Testing

@Suite("SQLiteSessionStore refuses what it must not touch")
struct RefusalTests {
    private func expectRefusal(
        _ directory: ScratchDirectory, code: StatusCode, containing fragments: [String]
    ) {
        do {
            let store = try openStore(directory)
            Issue.record("the store opened: \(store.location)")
        } catch let error as SwitchboardError {
            #expect(error.code == code)
            for fragment in fragments {
                #expect(error.message.contains(fragment), "\(error.message)")
            }
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("a file that is not a SQLite database is refused and left byte-identical")
    func notADatabase() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.state, withIntermediateDirectories: true)
        let garbage = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try garbage.write(to: URL(fileURLWithPath: directory.database))
        expectRefusal(directory, code: .dataLoss, containing: [directory.database, "not a SQLite database", "nothing was changed"])
        #expect(try fileBytes(directory.database) == garbage)
    }

    @Test("a corrupt database is refused and left byte-identical")
    func corruptDatabase() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        do {
            let store = try openStore(directory)
            for index in 0..<200 {
                try await store.createSession(makeSession("s-\(index)", labels: [Label(key: "k", value: String(repeating: "v", count: 200))]))
            }
            try await store.close()
        }
        // Keep the header, scribble over the pages after the first.
        var bytes = try fileBytes(directory.database)
        #expect(bytes.count > 8192)
        for index in 4096..<bytes.count where index % 7 == 0 {
            bytes[index] = 0xA5
        }
        try bytes.write(to: URL(fileURLWithPath: directory.database))
        expectRefusal(directory, code: .dataLoss, containing: [directory.database, "corrupt", "nothing was changed"])
        #expect(try fileBytes(directory.database) == bytes)
    }

    @Test("a database from a newer schema is refused and left untouched")
    func newerSchema() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        do {
            let store = try openStore(directory)
            try await store.createSession(makeSession("s-1"))
            try await store.close()
        }
        let queue = try DatabaseQueue(path: directory.database)
        try await queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA user_version = 99")
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
        try queue.close()
        let before = try fileBytes(directory.database)
        expectRefusal(directory, code: .failedPrecondition, containing: [
            "state database \(directory.database) has schema version 99, this switchboard knows up to 1; refusing to open it (nothing was changed)",
        ])
        #expect(try fileBytes(directory.database) == before)
    }

    @Test("another program's SQLite database is refused and left untouched")
    func foreignDatabase() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.state, withIntermediateDirectories: true)
        let queue = try DatabaseQueue(path: directory.database)
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine')")
        }
        try queue.close()
        let before = try fileBytes(directory.database)
        expectRefusal(directory, code: .failedPrecondition, containing: ["not a switchboard state database"])
        #expect(try fileBytes(directory.database) == before)
    }

    @Test("a second open of a state directory in use is refused, naming the holder's pid")
    func lockedDirectory() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory)
        expectRefusal(directory, code: .failedPrecondition, containing: [
            "state directory \(directory.state) is in use by another switchboard (pid \(getpid()))",
        ])
        try await store.close()
        // Released on close.
        let reopened = try openStore(directory)
        try await reopened.close()
        // The directory is private.
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.state)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
    }
}
