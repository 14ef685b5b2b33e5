import ArgumentParser
import SwitchboardClient
import SwitchboardProtocol

/// `switchboard session get ID`.
struct SessionGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Show one session (NOT_FOUND, exit 15, when there is none)."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The session id.")
    var id: String

    @Flag(help: "Print the session as JSON.")
    var json = false

    func run() async throws {
        let id = self.id
        let session = try await global.call(.getSession(id: id))
        if json {
            Console.out(try JSONOutput.document(JSONOutput.SessionJSON(session)))
        } else {
            Console.out(SessionView.detail(session))
        }
    }
}
