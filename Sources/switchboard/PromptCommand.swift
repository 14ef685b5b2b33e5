import ArgumentParser
import Foundation
import SwitchboardClient
import SwitchboardProtocol

/// `switchboard prompt`: sends a prompt and streams the answer to stdout as it arrives.
struct PromptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prompt",
        abstract: "Send a prompt to a session and stream the answer to stdout.",
        discussion: """
            Output chunks are written to stdout the moment they arrive. Without --session a \
            new session is created first and `session: ID` is printed on stderr. Ctrl-C \
            cancels the turn and exits with CANCELLED (11); once --reattach has re-attached, \
            the stream is an attach and Ctrl-C only stops following: the turn keeps running \
            and stderr says how to follow it (`switchboard attach`). A second Ctrl-C exits at \
            once, leaving the turn running (detached) unless the cancel had reached the \
            server or --cancel-on-disconnect is given. A prompt to a busy session \
            waits in its queue unless --reject-if-busy is given (then FAILED_PRECONDITION, 19).
            With --json, every event is one JSON object per line ({"accepted":…}, \
            {"started":…}, {"output":…}, {"finished":…}) followed by \
            {"end":{"code":"OK","message":""}} with the call's final status.
            The turn keeps running if the connection is lost (follow it again with \
            `switchboard attach`) unless --cancel-on-disconnect is given. With --reattach the \
            command does that by itself: it reconnects, re-attaches after the last chunk it \
            printed and carries on (a note on stderr, or an {"attached":…} line with --json). \
            A prompt whose connection is lost before the server accepted it is never sent \
            again: that fails with UNAVAILABLE (24).
            DURATION: \(DurationArgument.syntax).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The session; default: create a new one.", valueName: "id"))
    var session: String?

    @Flag(help: "Fail at once when the session has a turn running or queued, instead of waiting.")
    var rejectIfBusy = false

    @Option(help: ArgumentHelp("Deadline for the whole call, queueing included.", valueName: "duration"),
            transform: DurationArgument.parse)
    var timeout: Duration?

    @Flag(help: "Cancel the turn if this client's connection is lost (by default it runs on and `attach` can follow it).")
    var cancelOnDisconnect = false

    @Flag(help: "If the connection is lost after the turn was accepted, reconnect and re-attach to it, so the output continues without gaps or repeats.")
    var reattach = false

    @Flag(help: "Print every event as one JSON object per line (JSON Lines).")
    var json = false

    @Argument(help: ArgumentHelp("The prompt; words are joined by spaces. `-` or none: read it from stdin.", valueName: "prompt"))
    var words: [String] = []

    func validate() throws {
        if let timeout, timeout <= .zero { throw ValidationError("--timeout must be positive") }
    }

    func run() async throws {
        let turn = FollowedTurn(sessionID: session, attached: false, cancelOnDisconnect: cancelOnDisconnect)
        let run = PromptRun(
            turn: turn,
            socketPath: global.socketPath,
            sessionID: session,
            prompt: try readPrompt(),
            whenBusy: rejectIfBusy ? .reject : .wait,
            timeout: timeout,
            cancelOnDisconnect: cancelOnDisconnect,
            reattach: reattach,
            json: json
        )
        try await runInterruptibly(turn) { try await run.execute() }
    }

    private func readPrompt() throws -> String {
        if !words.isEmpty, words != ["-"] {
            return words.joined(separator: " ")
        }
        let data: Data?
        do {
            data = try FileHandle.standardInput.readToEnd()
        } catch {
            throw CLIFailure("cannot read the prompt from stdin: \(error.localizedDescription)")
        }
        return try StringInput.text(data ?? Data(), field: "prompt")
    }
}

/// A local failure (exit 1), printed as `switchboard: message`.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The part of `prompt` that runs in its own (cancellable) task.
private struct PromptRun: Sendable {
    let turn: FollowedTurn
    let socketPath: String
    let sessionID: String?
    let prompt: String
    let whenBusy: BusyPolicy
    let timeout: Duration?
    let cancelOnDisconnect: Bool
    let reattach: Bool
    let json: Bool

    func execute() async throws {
        try await CLIClient.with(socketPath: socketPath) { client in
            let sessionID: String
            if let id = self.sessionID {
                sessionID = id
            } else {
                sessionID = try await client.createSession().id
                turn.setSession(sessionID)
                Console.err("session: \(sessionID)\n")
            }
            let printer = StreamPrinter(json: json, turn: turn)
            let stream = client.prompt(
                sessionID: sessionID,
                prompt,
                whenBusy: whenBusy,
                timeout: timeout,
                cancelOnDisconnect: cancelOnDisconnect,
                resume: reattach ? .reattach() : .off,
                onReattach: { printer.reattached($0) }
            )
            try await printer.run(stream)
        }
    }
}
