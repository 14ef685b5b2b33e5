import Logging
import SwitchboardProtocol

extension SessionRegistry {
    /// The message of a turn that was running (or queued) when the server died.
    public static let interruptedMessage = "interrupted: the server stopped while this turn was running"

    /// Rebuilds the sessions kept in the store; call once at start, before serving.
    ///
    /// The store first rewrites turns that were queued or running when the previous
    /// process died as finished ABORTED ("interrupted", output so far kept). Each
    /// session comes back with its owner, labels, settings, times, completed-turn
    /// count and its most recent finished turns (for status). A session whose
    /// backend this server does not have is restored all the same; its prompts
    /// fail with FAILED_PRECONDITION. Returns how many sessions were restored.
    @discardableResult
    public func restore() async throws -> Int {
        let stored = try await store.load(interruptedMessage: Self.interruptedMessage)
        var restored = 0
        for session in stored {
            if !LabelRules.areValid(session.labels) {
                // Stored before labels were bounded: kept as they are; answers
                // that list it leave its labels out when they would not fit.
                logger.warning(
                    "stored session has labels that break the label rules; kept as they are",
                    metadata: ["session": "\(session.id)", "labels": "\(session.labels.count)"]
                )
            }
            let finished = session.turns.filter { $0.state == .finished }
            let managed = makeSession(
                id: session.id,
                labels: session.labels,
                settings: session.settings,
                ownerUID: session.ownerUID,
                backend: restoredBackend(for: session.settings),
                restored: ManagedSession.RestoredState(
                    createdAtMs: session.createdAtMs,
                    lastActivityMs: session.lastActivityMs,
                    // The store's counter, not the kept turns: retention deletes
                    // turns, and a turn ended while queued never completed.
                    turnsCompleted: session.turnsCompleted,
                    history: finished.suffix(max(0, configuration.finishedTurnsKept)).map(Self.summary(of:))
                )
            )
            if insertRestored(managed) {
                restored += 1
            } else {
                logger.warning("stored session skipped: its id is taken", metadata: ["session": "\(session.id)"])
            }
        }
        if !stored.isEmpty {
            logger.info("sessions restored", metadata: ["sessions": "\(restored)", "store": "\(store.location)"])
        }
        return restored
    }

    private func restoredBackend(for settings: SessionSettings) -> any Backend {
        if settings.backend.hasPrefix("worker:") {
            if let backend = try? workers.backend(for: settings) { return backend }
        } else if let backend = try? backends.backend(named: settings.backend) {
            return backend
        }
        return UnavailableBackend(name: settings.backend)
    }

    /// A stored turn as status and history report it.
    static func summary(of turn: StoredTurn) -> TurnSummary {
        TurnSummary(
            turnID: turn.turnID,
            state: turn.state,
            code: turn.ending?.code ?? .ok,
            message: turn.ending?.message ?? "",
            stopReason: turn.ending?.stopReason ?? "",
            chunks: turn.chunks,
            bytes: turn.bytes,
            startedAtMs: turn.startedAtMs,
            endedAtMs: turn.ending?.endedAtMs ?? 0,
            promptPreview: ManagedSession.preview(of: turn.prompt),
            acceptedAtMs: turn.acceptedAtMs
        )
    }
}

/// The backend of a restored session whose backend this server was not started
/// with (say, `exec` without `--exec-command`): every prompt fails clearly.
struct UnavailableBackend: Backend {
    let name: String

    func runTurn(_ turn: TurnRequest, output: TurnOutput) async throws -> String {
        throw SwitchboardError(
            code: .failedPrecondition,
            message: "backend \"\(name)\" is not configured on this server (the session was restored from the state directory)"
        )
    }
}
