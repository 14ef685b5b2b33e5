import SwitchboardProtocol

/// Human-readable renderings of sessions, shared by `session` and `status`.
enum SessionView {
    static func table(_ sessions: [Session], nowMs: UInt64 = Format.nowMs()) -> String {
        var table = TextTable("ID", "STATE", "BACKEND", "QUEUED", "TURNS", "LAST ACTIVITY", "LABELS")
        for session in sessions {
            table.add([
                session.id,
                session.state.description,
                session.settings.backend.isEmpty ? "-" : session.settings.backend,
                "\(session.queuedPrompts)",
                "\(session.turnsCompleted)",
                Format.age(sinceMs: session.lastActivityMs, nowMs: nowMs),
                labels(of: session),
            ])
        }
        return table.render()
    }

    static func detail(_ session: Session, nowMs: UInt64 = Format.nowMs()) -> String {
        var state = session.state.description
        if !session.currentTurnID.isEmpty { state += " (turn \(session.currentTurnID))" }
        let settings = session.settings
        let rows: [(String, String)] = [
            ("id", session.id),
            ("state", state),
            ("backend", settings.backend.isEmpty ? "default" : settings.backend),
            ("labels", labels(of: session)),
            ("created", Format.age(sinceMs: session.createdAtMs, nowMs: nowMs)),
            ("last activity", Format.age(sinceMs: session.lastActivityMs, nowMs: nowMs)),
            ("queued prompts", "\(session.queuedPrompts)"),
            ("turns completed", "\(session.turnsCompleted)"),
            ("idle timeout", Format.setting(settings.idleTimeoutMs)),
            ("turn deadline", Format.setting(settings.turnDeadlineMs)),
            ("stall timeout", Format.setting(settings.stallTimeoutMs)),
            ("max queued", settings.maxQueuedPrompts == 0 ? "default" : "\(settings.maxQueuedPrompts)"),
            ("owner uid", "\(session.ownerUID)"),
        ]
        return keyValues(rows)
    }

    /// The labels, or why the server left them out.
    static func labels(of session: Session) -> String {
        session.labelsOmitted ? "(omitted: too large for one answer)" : Format.labels(session.labels)
    }

    static func keyValues(_ rows: [(String, String)]) -> String {
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { key, value in
            key + String(repeating: " ", count: width - key.count + 2) + value
        }.joined(separator: "\n") + "\n"
    }
}
