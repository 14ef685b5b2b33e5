import ArgumentParser
import SwitchboardClient
import SwitchboardProtocol

/// `switchboard health`: a probe for scripts and supervisors.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Print SERVING or NOT_SERVING; exit 0 only when SERVING.",
        discussion: "Exit 2 when the server answers NOT_SERVING (draining, or its session store cannot write: the reason follows on the same line); 24 (UNAVAILABLE) when it cannot be reached."
    )

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let health = try await global.call(.healthCheck)
        switch health.status {
        case .serving:
            Console.out("SERVING\n")
        case .notServing:
            Console.out(health.reason.isEmpty ? "NOT_SERVING\n" : "NOT_SERVING: \(health.reason)\n")
            throw ExitCode(ExitCodes.notServing)
        case .unknown:
            Console.out("UNKNOWN\n")
            throw ExitCode(ExitCodes.notServing)
        }
    }
}
