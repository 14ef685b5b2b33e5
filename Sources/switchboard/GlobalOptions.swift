import ArgumentParser

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("The server's Unix socket.", discussion: SocketPath.rule, valueName: "path")
    )
    var socket: String?

    func validate() throws {
        // An empty --socket is a mistake (an unset variable in a script), not a request for the default.
        if let socket, socket.isEmpty { throw ValidationError("--socket must not be empty") }
    }

    /// The socket path after applying the default rule (``SocketPath``).
    var socketPath: String { SocketPath.resolve(option: self.socket) }
}
