import SwitchboardProtocol

extension SessionRegistry {
    /// `/switchboard.v1.Prompts/Attach`: finds the turn to follow (the running one
    /// for an empty turn id, else the most recent; NOT_FOUND when there is none,
    /// which for a turn older than the in-memory history is only known once the
    /// attachment runs and reads the store). PERMISSION_DENIED for another uid's
    /// session. Synchronous and event-loop safe.
    public func attach(_ request: AttachRequest, caller: Caller) throws(SwitchboardError) -> TurnAttachment {
        let session = try lookup(request.sessionID, caller: caller, action: "attach to")
        let target = session.attachTarget(turnID: request.turnID)
        if target == nil, request.turnID.isEmpty, configuration.finishedTurnsKept > 0 {
            // Nothing running and no finished turn in memory: the session has none.
            throw SwitchboardError(code: .notFound, message: "session \"\(session.id)\" has no turns")
        }
        return TurnAttachment(
            sessionID: session.id,
            requestedTurnID: request.turnID,
            afterSequence: request.afterSequence,
            target: target,
            store: store
        )
    }

    /// `/switchboard.v1.Sessions/ListTurns`: a page of the session's kept turns,
    /// oldest first, read from the store (so it waits for the store: call it off
    /// the event loop). Page size 0 = 20, capped at 100; the page token is opaque.
    ///
    /// `maxBytes` bounds the page's turns as ``TurnPageBudget`` counts them (the
    /// server passes the client's frame size less room for the frame around
    /// them): the page ends before the turn that would pass it, and a first turn
    /// too large on its own comes without its output, marked `outputOmitted`.
    public func listTurns(
        _ request: ListTurnsRequest,
        caller: Caller,
        maxBytes: Int = .max
    ) async throws(SwitchboardError) -> ListTurnsResponse {
        let session = try lookup(request.sessionID, caller: caller, action: "read the history of")
        let pageSize = request.pageSize == 0 ? 20 : Int(min(request.pageSize, 100))
        let afterPosition = try TurnPageToken.decode(request.pageToken)
        let page: StoredTurnPage
        do {
            page = try await store.turns(
                sessionID: session.id,
                page: TurnPage(
                    afterPosition: afterPosition,
                    limit: pageSize,
                    includeOutput: request.includeOutput,
                    maxBytes: maxBytes
                )
            )
        } catch {
            throw Self.storeError(error, reading: "the turns of session \"\(session.id)\"")
        }
        let turns = page.entries.map { entry in
            TurnHistoryEntry(
                summary: Self.summary(of: entry.turn),
                prompt: request.includeOutput && !entry.promptOmitted ? entry.turn.prompt : "",
                output: entry.output,
                outputDropped: entry.turn.outputDropped,
                outputOmitted: entry.outputOmitted
            )
        }
        let next = page.hasMore ? page.entries.last.map { TurnPageToken.encode($0.position) } ?? "" : ""
        return ListTurnsResponse(turns: turns, nextPageToken: next)
    }

    /// A store failure as the caller sees it: the store's own status when it
    /// gave one (NOT_FOUND, OUT_OF_RANGE, ...), else UNAVAILABLE.
    static func storeError(_ error: any Error, reading what: String) -> SwitchboardError {
        if let error = error as? SwitchboardError { return error }
        if error is CancellationError { return SwitchboardError(code: .cancelled, message: "cancelled") }
        return SwitchboardError(code: .unavailable, message: "cannot read \(what): \(error)", cause: error)
    }
}

/// The page token of ListTurns: the store position of the last turn of the page,
/// as `p` + lowercase hex. Opaque to clients; anything else is INVALID_ARGUMENT.
enum TurnPageToken {
    static func encode(_ position: UInt64) -> String {
        "p" + String(position, radix: 16)
    }

    static func decode(_ token: String) throws(SwitchboardError) -> UInt64 {
        if token.isEmpty { return 0 }
        guard token.hasPrefix("p"), token.count <= 17, let position = UInt64(token.dropFirst(), radix: 16) else {
            throw SwitchboardError(code: .invalidArgument, message: "invalid page token \"\(token.prefix(40))\"")
        }
        return position
    }
}
