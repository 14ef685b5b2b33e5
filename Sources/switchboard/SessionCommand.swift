import ArgumentParser

/// `switchboard session …`: the session management subcommands.
struct SessionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session",
        abstract: "Create, inspect, list and close sessions.",
        subcommands: [SessionCreate.self, SessionGet.self, SessionList.self, SessionClose.self]
    )
}
