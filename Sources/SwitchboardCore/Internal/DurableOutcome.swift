import SwitchboardProtocol

extension SessionStore {
    /// `outcome` as a caller may be told it: OK only once everything the turn
    /// recorded is durable (the store's `flush`, which commits in groups), so a
    /// client told OK never loses that turn, full disk included. When the store
    /// cannot make it durable, UNAVAILABLE "the turn could not be stored: …"
    /// (the turn ran; the store keeps its records and retries them, but cannot
    /// promise them). Other endings are returned as they are, without waiting.
    ///
    /// With `turn` (an Attach), only that turn's records are waited for.
    func confirmingDurability(of outcome: TurnOutcome, turn: (sessionID: String, turnID: String)? = nil) async -> TurnOutcome {
        guard outcome.code == .ok else { return outcome }
        do {
            if let turn {
                try await flush(sessionID: turn.sessionID, turnID: turn.turnID)
            } else {
                try await flush()
            }
            return outcome
        } catch {
            var unstored = outcome
            unstored.code = .unavailable
            unstored.message = "the turn could not be stored: \(SessionRegistry.describe(error))"
            return unstored
        }
    }
}
