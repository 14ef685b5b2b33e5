import SwitchboardCore
import SwitchboardProtocol
import Testing

/// A session belongs to the uid that created it: only that uid or an administrator
/// may read, prompt, list or close it, and one uid may own only so many.
@Suite struct OwnershipTests {
    let alice = Caller(uid: 1001, isAdmin: false)
    let bob = Caller(uid: 1002, isAdmin: false)
    let admin = Caller(uid: 0, isAdmin: true)

    private func create(_ harness: Harness, _ id: String, owner: Caller) async throws(SwitchboardError) {
        _ = try await harness.registry.createSession(
            CreateSessionRequest(sessionID: id, settings: SessionSettings(backend: "echo")),
            ownerUID: owner.uid,
            ownerIsAdmin: owner.isAdmin
        )
    }

    @Test func anotherUIDCannotReadPromptOrCloseASession() async throws {
        let harness = Harness()
        try await create(harness, "alices", owner: alice)
        let registry = harness.registry

        let denied = [
            expectError(.permissionDenied) { () throws(SwitchboardError) in try registry.getSession(id: "alices", caller: bob) },
            expectError(.permissionDenied) { () throws(SwitchboardError) in try registry.sessionStatus(id: "alices", caller: bob) },
            expectError(.permissionDenied) { () throws(SwitchboardError) in
                try registry.submitPrompt(PromptRequest(sessionID: "alices", prompt: "hi"), deadline: nil, caller: bob)
            },
            await expectError(.permissionDenied) { () async throws(SwitchboardError) in
                try await registry.closeSession(id: "alices", reason: "mine now", caller: bob)
            },
        ]
        #expect(denied.compactMap(\.?.message) == [
            "session \"alices\" belongs to uid 1001; uid 1002 may not read it",
            "session \"alices\" belongs to uid 1001; uid 1002 may not read the status of it",
            "session \"alices\" belongs to uid 1001; uid 1002 may not prompt it",
            "session \"alices\" belongs to uid 1001; uid 1002 may not close it",
        ])
        // Nothing happened to it: no turn was queued and it is still there.
        let session = try registry.getSession(id: "alices", caller: alice)
        #expect(session.queuedPrompts == 0 && session.turnsCompleted == 0)
        #expect(registry.statistics().sessionsTotal == 1)
        // A missing session is NOT_FOUND for everyone.
        expectError(.notFound) { () throws(SwitchboardError) in try registry.getSession(id: "nope", caller: bob) }
    }

    @Test func theOwnerAndAnAdministratorMayUseIt() async throws {
        let harness = Harness()
        try await create(harness, "alices", owner: alice)
        let registry = harness.registry
        #expect(try registry.getSession(id: "alices", caller: alice).ownerUID == 1001)
        #expect(try registry.sessionStatus(id: "alices", caller: admin).session?.id == "alices")
        let turn = try registry.submitPrompt(PromptRequest(sessionID: "alices", prompt: "hi"), deadline: nil, caller: alice)
        #expect(await turn.run { _ in }.code == .ok)
        let adminTurn = try registry.submitPrompt(PromptRequest(sessionID: "alices", prompt: "hi"), deadline: nil, caller: admin)
        #expect(await adminTurn.run { _ in }.code == .ok)
        _ = try await registry.closeSession(id: "alices", reason: "", caller: admin)
        #expect(registry.statistics().sessionsTotal == 0)
    }

    @Test func listingShowsANonAdministratorOnlyItsOwnSessions() async throws {
        let harness = Harness()
        for index in 0..<3 { try await create(harness, "a\(index)", owner: alice) }
        for index in 0..<2 { try await create(harness, "b\(index)", owner: bob) }
        try await create(harness, "root", owner: admin)
        let registry = harness.registry
        #expect(try registry.listSessions(ListSessionsRequest(), caller: alice).sessions.map(\.id) == ["a0", "a1", "a2"])
        #expect(try registry.listSessions(ListSessionsRequest(), caller: bob).sessions.map(\.id) == ["b0", "b1"])
        #expect(try registry.listSessions(ListSessionsRequest(), caller: admin).sessions.count == 6)
        // Paging works within what the caller may see.
        let first = try registry.listSessions(ListSessionsRequest(pageSize: 2), caller: alice)
        #expect(first.sessions.map(\.id) == ["a0", "a1"])
        let second = try registry.listSessions(ListSessionsRequest(pageSize: 2, pageToken: first.nextPageToken), caller: alice)
        #expect(second.sessions.map(\.id) == ["a2"] && second.nextPageToken.isEmpty)
        #expect(registry.sessionSnapshots(caller: bob).map(\.id) == ["b0", "b1"])
        #expect(registry.sessionSnapshots(caller: admin).count == 6)
    }

    @Test func sessionsPerUIDAreLimitedForNonAdministrators() async throws {
        let harness = Harness(configuration: CoreConfiguration(maxSessions: 100, maxSessionsPerUID: 3))
        let registry = harness.registry
        for index in 0..<3 { try await create(harness, "a\(index)", owner: alice) }
        let refused = await expectError(.resourceExhausted) { () async throws(SwitchboardError) in try await create(harness, "a3", owner: alice) }
        #expect(refused?.message == "too many sessions for uid 1001 (limit 3)")
        // Another uid is not affected, and an administrator is bounded only by maxSessions.
        for index in 0..<3 { try await create(harness, "b\(index)", owner: bob) }
        for index in 0..<5 { try await create(harness, "r\(index)", owner: admin) }
        // Closing one frees a slot for its owner; a refused create left nothing behind.
        _ = try await registry.closeSession(id: "a0", reason: "", caller: alice)
        try await create(harness, "a3", owner: alice)
        await expectError(.resourceExhausted) { () async throws(SwitchboardError) in try await create(harness, "a4", owner: alice) }
        // An id collision is not counted against the owner.
        await expectError(.alreadyExists) { () async throws(SwitchboardError) in try await create(harness, "b0", owner: bob) }
        _ = try await registry.closeSession(id: "b0", reason: "", caller: bob)
        try await create(harness, "b0", owner: bob)
        #expect(registry.statistics().sessionsTotal == 11)
    }

    @Test func idleCleanupReleasesTheOwnersSlot() async throws {
        let harness = Harness(configuration: CoreConfiguration(maxSessionsPerUID: 1))
        try await create(harness, "old", owner: alice)
        #expect(harness.registry.removeIdleSessions(nowMs: UInt64.max / 2) == ["old"])
        // The slot is the closed session's until the store's delete returned.
        await eventually("the closed session leaves the map") { harness.registry.managedSession(id: "old") == nil }
        try await create(harness, "new", owner: alice)
    }
}
