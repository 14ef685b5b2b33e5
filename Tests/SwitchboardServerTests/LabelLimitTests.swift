import SwitchboardCore
import SwitchboardProtocol
import Testing

/// Issue 12, item 4 over a raw socket: the server refuses labels that break the
/// rules, and no one's sessions can make another reader's status or session
/// list larger than its frame.
@Suite("Label limits over the wire")
struct LabelLimitWireTests {
    /// 64 labels at the longest key and value: the most a session may carry.
    static func largestLabels(_ tag: Int) -> [Label] {
        let prefix = (0..<4).map { _ in String(repeating: "p", count: 62) }.joined(separator: ".") + ".a"
        return (0..<LabelRules.maxCount).map { index in
            let name = String(("n\(tag)-\(index)-" + String(repeating: "n", count: 63)).prefix(62)) + "z"
            return Label(key: prefix + "/" + name, value: String(repeating: "v", count: 63))
        }
    }

    /// A client past a handshake announcing `maxFrameSize`.
    static func reader(_ server: TestServer, maxFrameSize: UInt32) async throws -> RawClient {
        let client = try server.connect()
        try await client.send(Frame(kind: .hello(Hello(clientName: "small-reader", maxFrameSize: maxFrameSize))))
        guard case .welcome = try await client.expectFrame().kind else {
            throw RawClientError(description: "no Welcome")
        }
        return client
    }

    /// Every ListSessions page from the first; each must be OK.
    static func listAll(_ client: RawClient, pageSize: UInt32 = 1000) async throws -> [ListSessionsResponse] {
        var pages: [ListSessionsResponse] = []
        var token = ""
        repeat {
            let end = try await client.unary(
                MethodName.listSessions,
                .listSessionsRequest(ListSessionsRequest(pageSize: pageSize, pageToken: token))
            )
            guard end.code == .ok, case .listSessionsResponse(let page)? = end.payload else {
                throw RawClientError(description: "ListSessions failed: \(end.code.name) \(end.message)")
            }
            pages.append(page)
            token = page.nextPageToken
        } while !token.isEmpty && pages.count < 10_000
        return pages
    }

    static func status(_ client: RawClient) async throws -> ServerStatus {
        let end = try await client.unary(MethodName.getServerStatus, .serverStatusRequest(ServerStatusRequest(includeSessions: true)))
        guard end.code == .ok, case .serverStatus(let status)? = end.payload else {
            throw RawClientError(description: "status failed: \(end.code.name) \(end.message)")
        }
        return status
    }

    @Test("the issue's attack (14 labels of 100,000 bytes), too many labels, a key twice: INVALID_ARGUMENT, connection usable")
    func oversizedLabelsRefused() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            let attack = (0..<14).map { Label(key: "k\($0)", value: String(repeating: "x", count: 100_000)) }
            let cases: [([Label], String)] = [
                (attack, "of label \"k0\" (labels[0]): \(LabelRules.valueRule)"),
                ([Label(key: String(repeating: "k", count: 100_000), value: "")], "(labels[0]): a key must be at most 317 characters"),
                ((0...64).map { Label(key: "k\($0)", value: "v") }, "too many labels: 65 (at most 64)"),
                ([Label(key: "team", value: "a"), Label(key: "team", value: "b")], "label key \"team\" appears more than once"),
                ([Label(key: "team", value: "Zürich 🚀")], "invalid value \"Zürich 🚀\" of label \"team\" (labels[0])"),
            ]
            for (labels, message) in cases {
                let end = try await client.unary(
                    MethodName.createSession,
                    .createSessionRequest(CreateSessionRequest(sessionID: "attack", labels: labels))
                )
                #expect(end.code == .invalidArgument, "\(end.code.name): \(end.message.prefix(200))")
                #expect(end.message.contains(message), "\(end.message.prefix(400))")
                #expect(end.message.utf8.count < 1024, "an error of \(end.message.utf8.count) bytes")
            }
            // Workers' labels follow the same rules.
            let workerCall = client.newCallID()
            let register = WorkerRegister(taskQueue: "q", capacity: 1, labels: [Label(key: "gpu", value: String(repeating: "g", count: 64))])
            try await client.send(Frame(callID: workerCall, kind: .start(CallStart(
                method: MethodName.workerConnect,
                payload: .workerMessage(.register(register))
            ))))
            let refused = try await client.expectEnd(of: workerCall)
            #expect(refused.code == .invalidArgument)
            #expect(refused.message.contains("(register.labels[0]): \(LabelRules.valueRule)"), "\(refused.message)")
            // Nothing was created; the connection still serves.
            let status = try await client.serverStatus()
            #expect(status.sessionsTotal == 0)
            #expect(status.workers.isEmpty)
        }
    }

    @Test("sessions larger in total than a reader's frame: status trims and counts, ListSessions pages reach every session")
    func listingsFitTheReadersFrame() async throws {
        try await withTestServer { server in
            // Another uid's sessions at the largest labels, 4.4 MB in all: more
            // than the default 4 MiB frame.
            let count = 170
            let ids = (0..<count).map { "u-" + String(1000 + $0) }
            for (index, id) in ids.enumerated() {
                _ = try await server.registry.createSession(
                    CreateSessionRequest(sessionID: id, labels: Self.largestLabels(index)),
                    ownerUID: 65534
                )
            }
            for maxFrameSize: UInt32 in [ProtocolVersion.defaultMaxFrameSize, 64 * 1024, ProtocolVersion.minimumMaxFrameSize] {
                let reader = try await Self.reader(server, maxFrameSize: maxFrameSize)
                let status = try await Self.status(reader)
                #expect(status.sessionsTotal == UInt32(count))
                #expect(status.sessions.count + Int(status.sessionsOmitted) == count, "frame \(maxFrameSize)")
                #expect(status.sessionsOmitted > 0, "frame \(maxFrameSize)")
                #expect(status.sessions.map(\.id) == Array(ids.prefix(status.sessions.count)))

                let pages = try await Self.listAll(reader)
                #expect(pages.flatMap(\.sessions).map(\.id) == ids, "frame \(maxFrameSize): \(pages.count) pages")
                #expect(pages.count > 1)
                let omitted = pages.flatMap(\.sessions).filter(\.labelsOmitted).count
                if maxFrameSize >= 64 * 1024 {
                    #expect(omitted == 0, "frame \(maxFrameSize)")
                } else {
                    // Each session alone is larger than 1 KiB: each comes first on its page, without labels.
                    #expect(omitted == count)
                    #expect(pages.count == count)
                }
                // GetSession fits too.
                let get = try await reader.unary(MethodName.getSession, .getSessionRequest(GetSessionRequest(sessionID: ids[0])))
                #expect(get.code == .ok, "\(get.code.name) \(get.message)")
                if case .session(let session)? = get.payload {
                    #expect(session.labelsOmitted == (maxFrameSize < 64 * 1024))
                    #expect(session.labels.count == (maxFrameSize < 64 * 1024 ? 0 : 64))
                }
                // Still one healthy connection.
                let health = try await reader.unary(MethodName.healthCheck, .healthCheckRequest(HealthCheckRequest()))
                #expect(health.code == .ok)
            }
        }
    }
}
