import SwitchboardClient
import SwitchboardProtocol

/// Prints a prompt's or an attach's events as they arrive; shared by `prompt` and
/// `attach` so both look the same.
///
/// Text mode writes the output chunks' bytes to stdout and nothing else. `--json`
/// writes one JSON object per event (``JSONOutput/PromptEventJSON``) and a last
/// `{"end":{…}}` line with the call's status, also when it failed.
struct StreamPrinter: Sendable {
    let json: Bool
    /// Told about every event (and re-attach), for what Ctrl-C says about the turn.
    var turn: FollowedTurn?

    /// Consumes `stream` to its end; rethrows its failure after printing it.
    func run(_ stream: PromptStream) async throws {
        var lastByte: UInt8?
        do {
            for try await event in stream {
                turn?.saw(event)
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

    /// A re-attach in the middle of a prompt: a note on stderr, or an
    /// `{"attached":{…}}` line among the JSON events.
    func reattached(_ attached: TurnAttached) {
        turn?.saw(.attached(attached))
        if json {
            if let line = try? JSONOutput.line(JSONOutput.PromptEventJSON(.attached(attached))) {
                Console.out(line)
            }
        } else {
            Console.err("switchboard: connection lost; re-attached to turn \(attached.turnID) (\(attached.state), \(attached.lastSequence) chunks so far)\n")
        }
    }

    /// A terminal's prompt should not be glued to the answer; a pipe gets the bytes as sent.
    private func finishLine(_ lastByte: UInt8?) {
        if !json, let lastByte, lastByte != UInt8(ascii: "\n"), Console.stdoutIsTerminal {
            Console.out("\n")
        }
    }
}
