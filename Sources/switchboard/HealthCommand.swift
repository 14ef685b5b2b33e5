import ArgumentParser
import SwitchboardClient
import SwitchboardProtocol

/// `switchboard health`: a probe for scripts and supervisors.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Print SERVING or NOT_SERVING; exit 0 only when SERVING.",
        discussion: "Exit 2 when the server answers NOT_SERVING (draining); 24 (UNAVAILABLE) when it cannot be reached."
    )

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let status = try await global.call(.health)
        switch status {
        case .serving:
            Console.out("SERVING\n")
        case .notServing:
            Console.out("NOT_SERVING\n")
            throw ExitCode(ExitCodes.notServing)
        case .unknown:
            Console.out("UNKNOWN\n")
            throw ExitCode(ExitCodes.notServing)
        }
    }
}
