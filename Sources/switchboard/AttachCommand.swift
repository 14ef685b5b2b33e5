import ArgumentParser
import SwitchboardClient
import SwitchboardProtocol

/// `switchboard attach ID`: follows a session's turn (replaying its kept output).
struct AttachCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Follow a session's turn: replay its kept output, then stream it live to its end.",
        discussion: """
            Without --turn it follows the session's running turn, else its most recent one. \
            --after N skips the chunks up to sequence number N (what a client that lost \
            its connection already has). Output is written to stdout as it arrives, as by \
            `prompt`; the exit code is the turn's status (0 for OK; 10+code otherwise, e.g. \
            ABORTED 20 for a turn a server restart interrupted, OUT_OF_RANGE 21 when the \
            output was dropped by retention, NOT_FOUND 15). Ctrl-C stops following (the \
            turn keeps running, and stderr says how to follow it again). With --json every event is one JSON object per line: \
            {"attached":…}, {"output":…}…, {"finished":…}, then {"end":{…}}.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The session id.")
    var id: String

    @Option(help: ArgumentHelp("The turn; default: the running turn, else the most recent one.", valueName: "turn-id"))
    var turn: String = ""

    @Option(help: ArgumentHelp("Replay only chunks with a sequence number above N.", valueName: "n"))
    var after: UInt64 = 0

    @Flag(help: "Print every event as one JSON object per line (JSON Lines).")
    var json = false

    func validate() throws {
        if id.isEmpty { throw ValidationError("the session id must not be empty") }
    }

    func run() async throws {
        let followed = FollowedTurn(sessionID: id, attached: true)
        let run = AttachRun(turn: followed, socketPath: global.socketPath, sessionID: id, turnID: turn, after: after, json: json)
        try await runInterruptibly(followed) { try await run.execute() }
    }
}

/// The part of `attach` that runs in its own (cancellable) task.
private struct AttachRun: Sendable {
    let turn: FollowedTurn
    let socketPath: String
    let sessionID: String
    let turnID: String
    let after: UInt64
    let json: Bool

    func execute() async throws {
        try await CLIClient.with(socketPath: socketPath) { client in
            try await StreamPrinter(json: json, turn: turn).run(client.attach(sessionID: sessionID, turnID: turnID, afterSequence: after))
        }
    }
}
