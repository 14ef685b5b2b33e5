import ArgumentParser
import Foundation
import SwitchboardClient
import SwitchboardProtocol

/// `switchboard session history ID`: the session's kept turns, oldest first.
struct SessionHistory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show a session's kept turns, oldest first.",
        discussion: """
            One page by default (--page-size, server default 20, at most 100); when more \
            turns follow, the token for the next page is printed on stderr (pass it with \
            --page-token), or use --all for every page. --output shows each turn's whole \
            prompt and kept output; a page holds at most one response frame (4 MiB by \
            default), and a turn too large for one on its own comes without its output \
            (`output_omitted`; `switchboard attach ID --turn TURN` streams it). With --json \
            the page is printed as {"turns":[…],"next_page_token":"…"} (output as base64 \
            `output` and, when it is valid UTF-8, `output_text`).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The session id.")
    var id: String

    @Option(help: ArgumentHelp("Turns per page (1-100; default: the server's, 20).", valueName: "n"))
    var pageSize: UInt32 = 0

    @Option(help: ArgumentHelp("Start at this page (the token a previous page printed).", valueName: "token"))
    var pageToken: String = ""

    @Flag(help: "Fetch every page.")
    var all = false

    @Flag(help: "Show each turn's whole prompt and kept output.")
    var output = false

    @Flag(help: "Print the turns as JSON.")
    var json = false

    func validate() throws {
        if id.isEmpty { throw ValidationError("the session id must not be empty") }
        if pageSize > 100 { throw ValidationError("--page-size must be at most 100") }
        if all, !pageToken.isEmpty { throw ValidationError("--all and --page-token cannot be combined") }
    }

    func run() async throws {
        let turns: [TurnHistoryEntry]
        var nextPageToken = ""
        if all {
            turns = try await global.call(.listAllTurns(sessionID: id, includeOutput: output))
        } else {
            let page = try await global.call(
                .listTurns(ListTurnsRequest(sessionID: id, pageSize: pageSize, pageToken: pageToken, includeOutput: output))
            )
            turns = page.turns
            nextPageToken = page.nextPageToken
        }
        if json {
            Console.out(try JSONOutput.document(JSONOutput.TurnHistoryJSON(turns: turns, nextPageToken: nextPageToken)))
            return
        }
        if turns.isEmpty {
            Console.err("no turns\n")
        } else if output {
            Console.out(TurnHistoryView.detail(turns, sessionID: id))
        } else {
            Console.out(TurnHistoryView.table(turns))
        }
        if !nextPageToken.isEmpty {
            Console.err("more turns: --page-token \(nextPageToken)\n")
        }
    }
}

/// Human-readable renderings of a session's history.
enum TurnHistoryView {
    static func table(_ turns: [TurnHistoryEntry]) -> String {
        var table = TextTable("TURN", "STATE", "CODE", "STOP", "CHUNKS", "BYTES", "STARTED", "DURATION", "PROMPT")
        let now = Format.nowMs()
        for turn in turns {
            let summary = turn.summary
            table.add([
                summary.turnID,
                summary.state.description,
                summary.state == .finished ? summary.code.name : "-",
                summary.stopReason.isEmpty ? "-" : summary.stopReason,
                "\(summary.chunks)",
                "\(summary.bytes)" + (turn.outputDropped ? " (dropped)" : turn.outputOmitted ? " (omitted)" : ""),
                Format.age(sinceMs: summary.startedAtMs, nowMs: now),
                duration(summary),
                Format.preview(summary.promptPreview),
            ])
        }
        return table.render()
    }

    /// Every turn with its whole prompt and output (or, for a turn too large for
    /// one page, how to read its output).
    static func detail(_ turns: [TurnHistoryEntry], sessionID: String) -> String {
        let now = Format.nowMs()
        return turns.map { turn in
            let summary = turn.summary
            var state = summary.state.description
            if summary.state == .finished {
                state += ", \(summary.code.name)"
                if !summary.message.isEmpty { state += ": \(summary.message)" }
            }
            var text = SessionView.keyValues([
                ("turn", summary.turnID),
                ("state", state),
                ("stop reason", summary.stopReason.isEmpty ? "-" : summary.stopReason),
                ("output", "\(summary.chunks) chunks, \(summary.bytes) bytes"),
                ("started", Format.age(sinceMs: summary.startedAtMs, nowMs: now)),
                ("duration", duration(summary)),
            ])
            if turn.outputOmitted && turn.prompt.isEmpty {
                text += "--- prompt (too large for a page; preview)\n" + withNewline(summary.promptPreview)
            } else {
                text += "--- prompt\n" + withNewline(turn.prompt)
            }
            if turn.outputDropped {
                text += "--- output (dropped by retention)\n"
            } else if turn.outputOmitted {
                text += "--- output (too large for a page; use `switchboard attach \(sessionID) --turn \(summary.turnID)`)\n"
            } else {
                text += "--- output\n" + withNewline(String(decoding: turn.output, as: UTF8.self))
            }
            return text
        }.joined(separator: "\n")
    }

    private static func duration(_ summary: TurnSummary) -> String {
        guard summary.startedAtMs > 0, summary.endedAtMs >= summary.startedAtMs else { return "-" }
        return Format.milliseconds(summary.endedAtMs - summary.startedAtMs)
    }

    private static func withNewline(_ text: String) -> String {
        text.isEmpty || text.hasSuffix("\n") ? text : text + "\n"
    }
}
