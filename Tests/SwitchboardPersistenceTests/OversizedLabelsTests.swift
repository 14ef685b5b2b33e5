import Logging
import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol
import Testing

/// Issue 12, item 4, the restart case on the real store: a state directory
/// written before labels were bounded (14 labels of 100,000 bytes per session,
/// as uid 65534 could store them) still loads; its sessions keep their labels,
/// and every listing fits the reader's frame.
@Suite("Sessions stored with labels from before the label rules")
struct OversizedLabelsTests {
    @Test("restart on a state directory with over-size labels: kept as stored; pages, status and get fit every frame")
    func restartWithOversizedLabels() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let huge = (0..<14).map { Label(key: "k\($0)", value: String(repeating: "x", count: 100_000)) }
        do {
            // Written through the store directly, as an older server would have.
            let store = try openStore(directory)
            for index in 0..<3 {
                try await store.createSession(makeSession("huge-\(index)", labels: huge, owner: 65534))
            }
            try await store.createSession(makeSession("roots", labels: [Label(key: "team", value: "docs")], owner: 0))
            try await store.close()
        }
        let store = try openStore(directory)
        var logger = Logger(label: "oversized-labels-test")
        logger.logLevel = .critical
        let registry = SessionRegistry(
            configuration: CoreConfiguration(),
            backends: BackendRegistry(echo: EchoBackend()),
            logger: logger,
            store: store
        )
        #expect(try await registry.restore() == 4)
        #expect(try registry.getSession(id: "huge-1", caller: .server).labels == huge)

        for frame in [Int(ProtocolVersion.defaultMaxFrameSize), 64 * 1024, Int(ProtocolVersion.minimumMaxFrameSize)] {
            var ids: [String] = []
            var token = ""
            repeat {
                let page = try registry.listSessions(ListSessionsRequest(pageToken: token), caller: .server, maxBytes: frame - 512)
                let size = Frame(callID: .max, kind: .end(CallEnd(code: .ok, payload: .listSessionsResponse(page)))).serializedBytes().count
                #expect(size <= frame, "a page of \(size) bytes for a frame of \(frame)")
                for session in page.sessions where session.id.hasPrefix("huge-") {
                    // Whole when it fits (a 4 MiB frame), else without its labels.
                    #expect(session.labelsOmitted == (frame < 1_500_000), "frame \(frame)")
                }
                ids += page.sessions.map(\.id)
                token = page.nextPageToken
            } while !token.isEmpty && ids.count < 100
            #expect(ids == ["huge-0", "huge-1", "huge-2", "roots"], "frame \(frame)")

            let status = registry.sessionSnapshots(caller: .server, maxBytes: frame - 1024)
            #expect(status.sessions.count + status.omitted == 4)
            let statusSize = Frame(callID: .max, kind: .end(CallEnd(code: .ok, payload: .serverStatus(ServerStatus(
                sessions: status.sessions, sessionsOmitted: UInt32(status.omitted)
            ))))).serializedBytes().count
            #expect(statusSize <= frame, "a status of \(statusSize) bytes for a frame of \(frame)")
        }
        // The owner's own view lists its three, the store is unchanged.
        let owner = Caller(uid: 65534, isAdmin: false)
        let own = try registry.listSessions(ListSessionsRequest(), caller: owner, maxBytes: 64 * 1024)
        #expect(own.sessions.map(\.id) == ["huge-0"] && own.nextPageToken == "huge-0")
        try await store.close()
    }
}
