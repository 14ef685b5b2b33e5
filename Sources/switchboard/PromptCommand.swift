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
            cancels the turn and exits with CANCELLED (11). A prompt to a busy session \
            waits in its queue unless --reject-if-busy is given (then FAILED_PRECONDITION, 19).
            With --json, every event is one JSON object per line ({"accepted":…}, \
            {"started":…}, {"output":…}, {"finished":…}) followed by \
            {"end":{"code":"OK","message":""}} with the call's final status.
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

    @Flag(help: "Print every event as one JSON object per line (JSON Lines).")
    var json = false

    @Argument(help: ArgumentHelp("The prompt; words are joined by spaces. `-` or none: read it from stdin.", valueName: "prompt"))
    var words: [String] = []

    func validate() throws {
        if let timeout, timeout <= .zero { throw ValidationError("--timeout must be positive") }
    }

    func run() async throws {
        let run = PromptRun(
            socketPath: global.socketPath,
            sessionID: session,
            prompt: try readPrompt(),
            whenBusy: rejectIfBusy ? .reject : .wait,
            timeout: timeout,
            json: json
        )
        let task = Task { try await run.execute() }
        let interrupt = InterruptHandler { task.cancel() }
        defer { interrupt.cancel() }
        try await task.value
    }

    private func readPrompt() throws -> String {
        if !words.isEmpty, words != ["-"] {
            return words.joined(separator: " ")
        }
        do {
            guard let data = try FileHandle.standardInput.readToEnd() else { return "" }
            return String(decoding: data, as: UTF8.self)
        } catch {
            throw CLIFailure("cannot read the prompt from stdin: \(error.localizedDescription)")
        }
    }
}

/// A local failure (exit 1), printed as `switchboard: message`.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The part of `prompt` that runs in its own (cancellable) task.
private struct PromptRun: Sendable {
    let socketPath: String
    let sessionID: String?
    let prompt: String
    let whenBusy: BusyPolicy
    let timeout: Duration?
    let json: Bool

    func execute() async throws {
        try await CLIClient.with(socketPath: socketPath) { client in
            let sessionID: String
            if let id = self.sessionID {
                sessionID = id
            } else {
                sessionID = try await client.createSession().id
                Console.err("session: \(sessionID)\n")
            }
            var lastByte: UInt8?
            do {
                for try await event in client.prompt(sessionID: sessionID, prompt, whenBusy: whenBusy, timeout: timeout) {
                    if json {
                        Console.out(try JSONOutput.line(JSONOutput.PromptEventJSON(event)))
                    } else if case .output(let chunk) = event, let last = chunk.data.last {
                        Console.out(bytes: chunk.data)
                        lastByte = last
                    }
                }
            } catch let error as SwitchboardError {
                if json {
                    Console.out(try JSONOutput.line(JSONOutput.PromptEventJSON(endCode: error.code, message: error.message)))
                }
                finishLine(lastByte)
                throw error
            }
            if json {
                Console.out(try JSONOutput.line(JSONOutput.PromptEventJSON(endCode: .ok, message: "")))
            }
            finishLine(lastByte)
        }
    }

    /// A terminal's prompt should not be glued to the answer; a pipe gets the bytes as sent.
    private func finishLine(_ lastByte: UInt8?) {
        if !json, let lastByte, lastByte != UInt8(ascii: "\n"), Console.stdoutIsTerminal {
            Console.out("\n")
        }
    }
}
