import ArgumentParser

/// `switchboard session …`: the session management subcommands.
struct SessionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session",
        abstract: "Create, inspect, list and close sessions, and show their turn history.",
        subcommands: [SessionCreate.self, SessionGet.self, SessionList.self, SessionClose.self, SessionHistory.self]
    )
}
