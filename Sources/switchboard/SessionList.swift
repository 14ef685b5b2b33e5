import ArgumentParser
import SwitchboardClient
import SwitchboardProtocol

/// `switchboard session list`: every session (all pages), optionally by label.
struct SessionList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List sessions, optionally only those carrying all of the given labels."
    )

    @OptionGroup var global: GlobalOptions

    @Option(
        name: .customLong("label"),
        help: ArgumentHelp("Only sessions with this label (repeatable; all must match).", valueName: "key=value"),
        transform: LabelArgument.parse
    )
    var labels: [Label] = []

    @Flag(help: "Print {\"sessions\": [...]} as JSON.")
    var json = false

    func run() async throws {
        let selector = self.labels
        let sessions = try await global.call(.listAllSessions(labelSelector: selector))
        if json {
            Console.out(try JSONOutput.document(JSONOutput.SessionListJSON(sessions: sessions.map(JSONOutput.SessionJSON.init))))
        } else if sessions.isEmpty {
            Console.err("no sessions\n")
        } else {
            Console.out(SessionView.table(sessions))
        }
    }
}
