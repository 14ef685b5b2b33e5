import Foundation
import SwitchboardPersistence
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The database holds every uid's prompts and output: its files are the
/// server user's alone, whatever the state directory's mode.
@Suite("State database file modes")
struct FileModeTests {
    private static let databaseFiles = ["", "-wal", "-shm"]

    @Test("in an existing 0755 state directory the database, -wal and -shm are created 0600")
    func openDirectory() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        try #require(mkdir(directory.state, 0o755) == 0 && chmod(directory.state, 0o755) == 0)
        let store = try openStore(directory)
        try await store.createSession(makeSession("s-1"))
        store.recordTurn(session: "s-1", turn: "t-1", prompt: "secret", chunks: ["more secrets"])
        try await store.flush()
        for suffix in Self.databaseFiles {
            #expect(try fileMode(directory.database + suffix) == 0o600, "switchboard.sqlite\(suffix)")
        }
        try await store.close()
        // The directory is the operator's: warned about, left as it was.
        #expect(try fileMode(directory.state) == 0o755)
    }

    @Test("existing database files readable by others are made 0600 when opened, contents kept")
    func existingFilesNarrowed() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        do {
            let store = try openStore(directory)
            try await store.createSession(makeSession("s-1"))
            store.recordTurn(session: "s-1", turn: "t-1", chunks: ["kept"])
            try await store.close()
        }
        // As an older build or a careless copy would leave them (an empty -wal
        // and -shm are valid: no frames, an index SQLite rebuilds).
        for suffix in Self.databaseFiles {
            let fd = open(directory.database + suffix, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            try #require(fd >= 0 && fchmod(fd, 0o644) == 0)
            close(fd)
        }
        let store = try openStore(directory)
        for suffix in Self.databaseFiles {
            #expect(try fileMode(directory.database + suffix) == 0o600, "switchboard.sqlite\(suffix)")
        }
        let loaded = try await store.load(interruptedMessage: "x")
        #expect(loaded.map(\.id) == ["s-1"])
        let output = try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: 0, limit: 10)
        #expect(output.map(\.data) == [Array("kept".utf8)])
        try await store.close()
    }
}
