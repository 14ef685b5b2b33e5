import ArgumentParser

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("The server's Unix socket.", discussion: SocketPath.rule, valueName: "path")
    )
    var socket: String?

    /// The socket path after applying the default rule (``SocketPath``).
    var socketPath: String { SocketPath.resolve(option: self.socket) }
}
