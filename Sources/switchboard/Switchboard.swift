import ArgumentParser
import SwitchboardProtocol

/// The `switchboard` command: the server (`serve`) and a client for it.
@main
struct Switchboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "A local broker for long-running conversational work, and its client.",
        discussion: """
            Run `switchboard serve` for the server; every other subcommand talks to it over \
            its Unix socket.

            \(SocketPath.rule)

            \(ExitCodes.helpText)
            """,
        version: SwitchboardVersion.string,
        subcommands: [ServeCommand.self, SessionCommand.self, PromptCommand.self, AttachCommand.self, StatusCommand.self, HealthCommand.self, WorkerSubcommand.self]
    )

    /// ArgumentParser's `main`, except that a `SwitchboardError` from a command is
    /// printed as `switchboard: CODE_NAME: message` and exits with `10 + code`
    /// (``ExitCodes``); a local ``CLIFailure`` exits 1.
    static func main() async {
        var command: any ParsableCommand
        do {
            try StringInput.checkArguments()
        } catch {
            fail(error)
        }
        // Repeated --label options are parsed here, in linear time (LabelArgument).
        let (arguments, labelTexts) = LabelArgument.extract(from: Array(CommandLine.arguments.dropFirst()))
        do {
            command = try await asyncParseAsRoot(arguments)
        } catch {
            exit(withError: error)  // usage errors (64), --help and --version (0)
        }
        if !labelTexts.isEmpty, var labelled = command as? any LabelArgumentCommand {
            do {
                labelled.labels = try labelTexts.map(LabelArgument.parse)
            } catch {
                let path = LabelArgument.commandPaths.first { arguments.starts(with: $0) } ?? []
                Console.err("Error: \(error.message)\n  See 'switchboard \(path.joined(separator: " ")) --help'.\n")
                exitProcess(ExitCodes.usage)
            }
            command = labelled
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            fail(error)
        }
    }

    static func fail(_ error: any Error) -> Never {
        switch error {
        case let error as SwitchboardError:
            Console.err("switchboard: \(error.code.name): \(error.message)\n")
            exitProcess(ExitCodes.forStatus(error.code))
        case let error as CLIFailure:
            Console.err("switchboard: \(error.description)\n")
            exitProcess(ExitCodes.localFailure)
        default:
            // ArgumentParser's own (help, usage: 64, ExitCode) and anything unforeseen (1).
            exit(withError: error)
        }
    }
}
