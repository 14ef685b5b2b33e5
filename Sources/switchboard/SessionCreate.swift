import ArgumentParser
import SwitchboardClient
import SwitchboardProtocol

/// `switchboard session create`: prints the new session's id (or the session as JSON).
struct SessionCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a session and print its id.",
        discussion: "Settings left out use the server's defaults. DURATION: \(DurationArgument.syntax)."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "The session id ([A-Za-z0-9._-], 1-128 characters); default: chosen by the server.")
    var id: String?

    @Option(
        name: .customLong("label"),
        help: ArgumentHelp("A label for the session (repeatable).", valueName: "key=value"),
        transform: LabelArgument.parse
    )
    var labels: [Label] = []

    @Option(help: ArgumentHelp("Backend: echo, exec or worker:QUEUE; default: the server's.", valueName: "name"))
    var backend: String?

    @Option(help: ArgumentHelp("Idle cleanup removes the session after this long without activity.", valueName: "duration"),
            transform: DurationArgument.parse)
    var idleTimeout: Duration?

    @Option(help: ArgumentHelp("Longest a turn may run.", valueName: "duration"), transform: DurationArgument.parse)
    var turnDeadline: Duration?

    @Option(help: ArgumentHelp("Longest a turn may go without output.", valueName: "duration"), transform: DurationArgument.parse)
    var stallTimeout: Duration?

    @Option(help: ArgumentHelp("Prompts that may wait behind the running turn.", valueName: "n"))
    var maxQueuedPrompts: UInt32?

    @Flag(help: "worker:QUEUE backends: fail a turn at once with UNAVAILABLE when no worker is free (default: wait).")
    var failIfNoWorker = false

    @Flag(help: "Print the created session as JSON.")
    var json = false

    func validate() throws {
        for (name, value) in [("--idle-timeout", idleTimeout), ("--turn-deadline", turnDeadline), ("--stall-timeout", stallTimeout)] {
            if let value, value <= .zero { throw ValidationError("\(name) must be positive") }
        }
        if maxQueuedPrompts == 0 { throw ValidationError("--max-queued-prompts must be positive") }
    }

    func run() async throws {
        let request = CreateSessionRequest(
            sessionID: id ?? "",
            labels: labels,
            settings: SessionSettings(
                backend: backend ?? "",
                idleTimeoutMs: idleTimeout.map(DurationArgument.milliseconds) ?? 0,
                turnDeadlineMs: turnDeadline.map(DurationArgument.milliseconds) ?? 0,
                stallTimeoutMs: stallTimeout.map(DurationArgument.milliseconds) ?? 0,
                maxQueuedPrompts: maxQueuedPrompts ?? 0,
                whenNoWorker: failIfNoWorker ? .fail : .wait
            )
        )
        // Retried after a refusal only when --id chose the id (see RetryableCall).
        let session = try await global.call(.createSession(request))
        if json {
            Console.out(try JSONOutput.document(JSONOutput.SessionJSON(session)))
        } else {
            Console.out(session.id + "\n")
        }
    }
}
