import ArgumentParser
import SwitchboardClient
import SwitchboardProtocol

/// `switchboard status`: the server's counters and sessions, or one session's turns.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the server's status and its sessions, or one session's detail and turns.",
        discussion: """
            --json prints a stable document: the server status (with `sessions` always \
            included, as many as fit in one answer; `sessions_omitted` counts the others) \
            or, with --session, {"session": …, "turns": […]}. Keys are the proto \
            field names, enums lowercase names, status codes names such as "OK".
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Show this session's detail and its recent turns.", valueName: "id"))
    var session: String?

    @Flag(help: "Print JSON instead of tables.")
    var json = false

    func run() async throws {
        if let id = session {
            let status = try await global.call(.sessionStatus(id: id))
            Console.out(json ? try JSONOutput.document(JSONOutput.SessionStatusJSON(status)) : Self.render(status))
        } else {
            let status = try await global.call(.serverStatus(includeSessions: true))
            Console.out(json ? try JSONOutput.document(JSONOutput.ServerStatusJSON(status)) : Self.render(status))
        }
    }

    static func render(_ status: ServerStatus) -> String {
        var text = SessionView.keyValues([
            ("server", "switchboard \(status.serverVersion) (protocol \(status.protocolVersion))"),
            ("pid", "\(status.pid)"),
            ("uptime", Format.milliseconds(status.uptimeMs)),
            ("connections", "\(status.connections)"),
            ("sessions", "\(status.sessionsTotal) (\(status.sessionsIdle) idle, \(status.sessionsBusy) busy)"),
            ("turns in flight", "\(status.turnsInFlight)"),
            ("queued prompts", "\(status.queuedPrompts)"),
            ("max queue depth", "\(status.maxQueueDepth)"),
            ("turns completed", "\(status.turnsCompleted)"),
            ("draining", status.draining ? "yes" : "no"),
            ("store", status.storeError.isEmpty
                ? "writing"
                : "CANNOT WRITE (first failed \(Format.age(sinceMs: status.storeErrorSinceMs))): \(status.storeError) (new sessions and prompts are refused)"),
        ])
        if !status.sessions.isEmpty {
            text += "\n" + SessionView.table(status.sessions)
        }
        if status.sessionsOmitted > 0 {
            let count = status.sessionsOmitted
            text += "\n\(count) more session\(count == 1 ? "" : "s") not shown (too large for one answer); "
                + "`switchboard session list` shows them all\n"
        }
        if !status.workers.isEmpty || !status.workerQueues.isEmpty {
            text += "\n" + WorkerView.table(status.workers, queues: status.workerQueues)
        }
        return text
    }

    static func render(_ status: SessionStatus, nowMs: UInt64 = Format.nowMs()) -> String {
        var text = status.session.map { SessionView.detail($0, nowMs: nowMs) } ?? ""
        guard !status.turns.isEmpty else { return text + "\nno turns yet\n" }
        var table = TextTable("TURN", "STATE", "CODE", "STOP REASON", "CHUNKS", "BYTES", "DURATION", "PROMPT")
        for turn in status.turns {
            let finished = turn.state == .finished
            table.add([
                turn.turnID,
                turn.state.description,
                finished ? turn.code.name : "-",
                turn.stopReason.isEmpty ? "-" : turn.stopReason,
                "\(turn.chunks)",
                "\(turn.bytes)",
                duration(of: turn, nowMs: nowMs),
                Format.preview(turn.promptPreview),
            ])
        }
        text += "\n" + table.render()
        return text
    }

    /// Run time so far for a running turn, total for a finished one, "-" when queued.
    private static func duration(of turn: TurnSummary, nowMs: UInt64) -> String {
        guard turn.startedAtMs > 0 else { return "-" }
        let end = turn.endedAtMs > 0 ? turn.endedAtMs : nowMs
        return end >= turn.startedAtMs ? Format.milliseconds(end - turn.startedAtMs) : "-"
    }
}
