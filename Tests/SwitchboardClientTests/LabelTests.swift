import SwitchboardClient
import SwitchboardProtocol
import Testing

@Suite("Labels: early checks and listings that fit the client's frame", .timeLimit(.minutes(TestTimeScale.hangGuardMinutes)))
struct LabelTests {
    /// 64 labels at the longest key and value: the most a session may carry.
    static func largestLabels(_ tag: Int) -> [Label] {
        let prefix = (0..<4).map { _ in String(repeating: "p", count: 62) }.joined(separator: ".") + ".a"
        return (0..<LabelRules.maxCount).map { index in
            let name = String(("n\(tag)-\(index)-" + String(repeating: "n", count: 63)).prefix(62)) + "z"
            return Label(key: prefix + "/" + name, value: String(repeating: "v", count: 63))
        }
    }

    @Test("createSession refuses labels that break the rules before sending anything")
    func createChecksEarly() async throws {
        let fake = try FakeServer { connection in
            try connection.acceptHandshake()
            connection.drainUntilClosed()
        }
        defer { fake.stop() }
        let labels = [Label(key: "team", value: String(repeating: "x", count: 100_000))]
        let expected = #expect(throws: SwitchboardError.self) { try LabelRules.validate(labels) }
        try await withSwitchboardClient(socketPath: fake.socketPath) { client in
            let error = await switchboardError {
                _ = try await client.createSession(CreateSessionRequest(sessionID: "s", labels: labels))
            }
            #expect(error?.code == .invalidArgument)
            #expect(error == expected)
            #expect(error?.message.contains("of label \"team\" (labels[0])") == true)
        }
        try await fake.waitUntilScriptEnded()
        let starts = fake.receivedFrames.filter { $0.isStart }
        #expect(starts.isEmpty, "a call was sent: \(starts)")
    }

    @Test("a worker's labels are checked before it connects")
    func workerChecksEarly() async throws {
        let register = WorkerRegister(taskQueue: "q", capacity: 1, labels: [Label(key: "bad key", value: "")])
        let error = await switchboardError {
            // No server at this path: only a check before connecting gives INVALID_ARGUMENT.
            _ = try await WorkerSession.connect(socketPath: "/nonexistent/switchboard.sock", register: register)
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("(register.labels[0]): \(LabelRules.nameRule)") == true, "\(error?.message ?? "")")
    }

    @Test("a client with a 16 KiB frame gets a trimmed status and pages through every session")
    func smallFrameClient() async throws {
        try await withTestServer { server in
            let ids = (0..<12).map { "s-\(100 + $0)" }
            try await server.withClient { client in
                for (index, id) in ids.enumerated() {
                    let created = try await client.createSession(CreateSessionRequest(sessionID: id, labels: Self.largestLabels(index)))
                    #expect(created.labels.count == 64)
                }
            }
            let small = try await server.client { $0.maxFrameSize = 16 * 1024 }
            let status = try await small.serverStatus(includeSessions: true)
            #expect(status.sessionsTotal == 12)
            #expect(status.sessions.count + Int(status.sessionsOmitted) == 12)
            #expect(status.sessionsOmitted >= 11)
            var listed: [Session] = []
            var token = ""
            var pages = 0
            repeat {
                let page = try await small.listSessions(ListSessionsRequest(pageSize: 1000, pageToken: token))
                listed += page.sessions
                token = page.nextPageToken
                pages += 1
            } while !token.isEmpty && pages < 100
            #expect(listed.map(\.id) == ids)
            #expect(listed.allSatisfy { $0.labelsOmitted && $0.labels.isEmpty })
            let session = try await small.getSession(id: ids[0])
            #expect(session.labelsOmitted)
            // A default client sees them whole.
            let whole = try await server.withClient { client in try await client.getSession(id: ids[0]) }
            #expect(whole.labels == Self.largestLabels(0) && !whole.labelsOmitted)
            await small.close()
        }
    }
}
