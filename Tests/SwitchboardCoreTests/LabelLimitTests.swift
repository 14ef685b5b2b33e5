import SwitchboardCore
import SwitchboardProtocol
import Testing

/// Issue 12, item 4: labels are bounded, and listings (ListSessions pages, the
/// sessions of a server status, GetSession) fit the reader's frame whatever the
/// sessions hold.
@Suite("Label limits and listings bounded by the reader's frame")
struct LabelLimitTests {
    /// 64 labels at the longest key (317 bytes) and value (63 bytes): the most a
    /// session may carry.
    static func largestLabels(_ tag: Int) -> [Label] {
        let prefix = (0..<4).map { _ in String(repeating: "p", count: 62) }.joined(separator: ".") + ".a"
        return (0..<LabelRules.maxCount).map { index in
            let name = "n\(tag)-\(index)-" + String(repeating: "n", count: 63)
            return Label(key: prefix + "/" + String(name.prefix(62)) + "z", value: String(repeating: "v", count: 63))
        }
    }

    /// The largest the page's answer frame gets on the wire.
    static func frameSize(_ payload: Payload) -> Int {
        Frame(callID: .max, kind: .end(CallEnd(code: .ok, payload: payload))).serializedBytes().count
    }

    /// Every page from the first, with `maxBytes` per page.
    static func allPages(_ registry: SessionRegistry, maxBytes: Int, pageSize: UInt32 = 0) throws -> [ListSessionsResponse] {
        var pages: [ListSessionsResponse] = []
        var token = ""
        repeat {
            let page = try registry.listSessions(ListSessionsRequest(pageSize: pageSize, pageToken: token), caller: .server, maxBytes: maxBytes)
            pages.append(page)
            token = page.nextPageToken
        } while !token.isEmpty && pages.count < 10_000
        return pages
    }

    @Test("labels that break the rules are refused with INVALID_ARGUMENT, and no session is kept")
    func createRefusesBadLabels() async throws {
        let harness = Harness()
        let huge = (0..<14).map { Label(key: "k\($0)", value: String(repeating: "x", count: 100_000)) }
        let error = await expectError(.invalidArgument) { () async throws(SwitchboardError) in
            try await harness.createSession("attack", labels: huge)
        }
        #expect(error?.message.hasPrefix("invalid value \"xxxx") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("of label \"k0\" (labels[0]): \(LabelRules.valueRule)") == true)
        let tooMany = await expectError(.invalidArgument) { () async throws(SwitchboardError) in
            try await harness.createSession("attack", labels: (0...64).map { Label(key: "k\($0)", value: "") })
        }
        #expect(tooMany?.message == "too many labels: 65 (at most 64)")
        #expect(harness.registry.sessionSnapshots().isEmpty)
        #expect(harness.registry.statistics().sessionsTotal == 0)
        // The id was never taken; the largest allowed labels are accepted.
        let created = try await harness.createSession("attack", labels: Self.largestLabels(0))
        #expect(created.labels == Self.largestLabels(0))
    }

    @Test("a worker's labels follow the same rules")
    func workerLabels() {
        let harness = Harness()
        let bad = WorkerRegister(taskQueue: "q", capacity: 1, labels: [Label(key: "gpu", value: "a100 🚀")])
        let error = expectError(.invalidArgument) { () throws(SwitchboardError) in
            try harness.registry.workers.register(bad, link: RecordingLink())
        }
        #expect(error?.message.contains("(register.labels[0])") == true, "\(error?.message ?? "")")
        #expect(harness.registry.workers.snapshot().workers.isEmpty)
    }

    @Test("ListSessions pages end before the session that would pass the byte budget; paging reaches every session")
    func pagesBoundedByBytes() async throws {
        let harness = Harness()
        for index in 0..<30 {
            try await harness.createSession("s\(index < 10 ? "0" : "")\(index)", labels: Self.largestLabels(index))
        }
        let one = try harness.registry.getSession(id: "s00", caller: .server)
        let sessionSize = SessionListBudget.estimatedSize(of: one)
        #expect(sessionSize > 64 * (317 + 63), "estimate \(sessionSize)")

        let maxBytes = 100_000
        let pages = try Self.allPages(harness.registry, maxBytes: maxBytes)
        #expect(pages.flatMap(\.sessions).map(\.id) == (0..<30).map { "s\($0 < 10 ? "0" : "")\($0)" })
        #expect(pages.count == 10, "\(pages.map(\.sessions.count))")
        for page in pages {
            #expect(page.sessions.count == maxBytes / sessionSize)
            #expect(page.sessions.allSatisfy { !$0.labelsOmitted && $0.labels.count == 64 })
            let size = Self.frameSize(.listSessionsResponse(page))
            #expect(size <= maxBytes + 512, "a page of \(size) bytes for a budget of \(maxBytes)")
        }
        // The count still bounds a page.
        let byCount = try Self.allPages(harness.registry, maxBytes: .max, pageSize: 7)
        #expect(byCount.map(\.sessions.count) == [7, 7, 7, 7, 2])
    }

    @Test("a session too large for a page on its own comes alone without its labels, marked labels_omitted")
    func sessionAloneWithoutLabels() async throws {
        let harness = Harness()
        for index in 0..<5 {
            try await harness.createSession("s\(index)", labels: Self.largestLabels(index))
        }
        // The smallest client frame (1 KiB) less the page's overhead.
        let pages = try Self.allPages(harness.registry, maxBytes: Int(ProtocolVersion.minimumMaxFrameSize) - 512)
        #expect(pages.map(\.sessions.count) == [1, 1, 1, 1, 1])
        #expect(pages.flatMap(\.sessions).map(\.id) == ["s0", "s1", "s2", "s3", "s4"])
        for page in pages {
            #expect(page.sessions.allSatisfy { $0.labelsOmitted && $0.labels.isEmpty })
            #expect(Self.frameSize(.listSessionsResponse(page)) <= Int(ProtocolVersion.minimumMaxFrameSize))
        }
        let session = try harness.registry.getSession(id: "s0", caller: .server)
        #expect(SessionListBudget.fitting(session, maxBytes: 512) == session.withoutLabels())
        #expect(SessionListBudget.fitting(session, maxBytes: 64 * 1024) == session)
    }

    @Test("a status holds the sessions that fit its budget and counts the others")
    func statusTrimmed() async throws {
        let harness = Harness()
        for index in 0..<12 {
            try await harness.createSession("s\(index < 10 ? "0" : "")\(index)", labels: Self.largestLabels(index))
        }
        _ = try await harness.registry.createSession(CreateSessionRequest(sessionID: "theirs"), ownerUID: 2000)
        let all = harness.registry.sessionSnapshots(caller: .server, maxBytes: .max)
        #expect(all.sessions.count == 13 && all.omitted == 0)

        let trimmed = harness.registry.sessionSnapshots(caller: .server, maxBytes: 100_000)
        #expect(trimmed.sessions.map(\.id) == ["s00", "s01", "s02"])
        #expect(trimmed.omitted == 10)
        #expect(Self.frameSize(.serverStatus(ServerStatus(sessions: trimmed.sessions))) <= 100_000 + 512)

        // Nothing fits: no session, all counted; a non-admin counts only its own.
        let none = harness.registry.sessionSnapshots(caller: .server, maxBytes: 100)
        #expect(none.sessions.isEmpty && none.omitted == 13)
        let owner = Caller(uid: 1000, isAdmin: false)
        #expect(harness.registry.sessionSnapshots(caller: owner, maxBytes: 100).omitted == 12)
    }

    @Test("restart: sessions stored with labels from before the rules are kept, and listings still fit every frame")
    func restoredOversizedLabels() async throws {
        let store = InMemorySessionStore()
        // What uid 65534 could store before the rules: 14 labels of 100,000 bytes.
        let huge = (0..<14).map { Label(key: "k\($0)", value: String(repeating: "x", count: 100_000)) }
        for index in 0..<3 {
            try await store.createSession(StoredSession(
                id: "huge-\(index)", labels: huge, settings: SessionSettings(backend: "echo"),
                ownerUID: 65534, createdAtMs: 1, lastActivityMs: 1
            ))
        }
        try await store.createSession(StoredSession(
            id: "plain", labels: [Label(key: "team", value: "docs")], settings: SessionSettings(backend: "echo"),
            ownerUID: 0, createdAtMs: 1, lastActivityMs: 1
        ))
        let harness = Harness(store: store)
        #expect(try await harness.registry.restore() == 4)
        // Kept as they were.
        #expect(try harness.registry.getSession(id: "huge-0", caller: .server).labels == huge)

        // A 4 MiB reader: two 1.4 MB sessions per page at most, every page fits.
        let defaultFrame = Int(ProtocolVersion.defaultMaxFrameSize)
        let pages = try Self.allPages(harness.registry, maxBytes: defaultFrame - 512)
        #expect(pages.flatMap(\.sessions).map(\.id) == ["huge-0", "huge-1", "huge-2", "plain"])
        #expect(pages.flatMap(\.sessions).allSatisfy { !$0.labelsOmitted })
        for page in pages {
            #expect(Self.frameSize(.listSessionsResponse(page)) <= defaultFrame)
        }
        // A 64 KiB reader: each huge session first on its page, without its
        // labels; what fits in the rest of the page may follow it.
        let small = try Self.allPages(harness.registry, maxBytes: 64 * 1024 - 512)
        #expect(small.map { $0.sessions.map(\.id) } == [["huge-0"], ["huge-1"], ["huge-2", "plain"]])
        #expect(small.flatMap(\.sessions).map(\.labelsOmitted) == [true, true, true, false])
        #expect(small.last?.sessions.last?.labels == [Label(key: "team", value: "docs")])
        // The status of a 4 MiB reader: what fits, and the count of the rest.
        let status = harness.registry.sessionSnapshots(caller: .server, maxBytes: defaultFrame - 1024)
        #expect(status.sessions.map(\.id) == ["huge-0", "huge-1"])
        #expect(status.omitted == 2)
        #expect(Self.frameSize(.serverStatus(ServerStatus(sessions: status.sessions))) <= defaultFrame)
    }
}
