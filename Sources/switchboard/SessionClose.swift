import ArgumentParser
import SwitchboardClient
import SwitchboardProtocol

/// `switchboard session close ID`: cancels its running turn, fails its queued prompts.
struct SessionClose: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "close",
        abstract: "Close a session: its running turn is cancelled and its queued prompts fail."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The session id.")
    var id: String

    @Option(help: "Why; recorded by the server and given to cancelled prompts.")
    var reason: String = ""

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        let (id, reason) = (self.id, self.reason)
        let response = try await global.withClient { client in
            try await client.closeSession(id: id, reason: reason)
        }
        if json {
            Console.out(try JSONOutput.document(JSONOutput.CloseSessionJSON(response)))
        } else {
            Console.out(
                "closed \(id) (cancelled \(response.cancelledTurns) running turn(s), rejected \(response.rejectedPrompts) queued prompt(s))\n"
            )
        }
    }
}
