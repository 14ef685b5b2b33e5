import SwitchboardClient
import SwitchboardProtocol

/// How the CLI's client commands connect.
enum CLIClient {
    /// Connects to `socketPath`, runs `body`, and closes the connection.
    static func with<R: Sendable>(socketPath: String, _ body: (SwitchboardClient) async throws -> R) async throws -> R {
        var configuration = ClientConfiguration()
        configuration.clientName = "switchboard-cli/\(SwitchboardVersion.string)"
        return try await withSwitchboardClient(socketPath: socketPath, configuration: configuration, body)
    }
}

extension GlobalOptions {
    /// Connects to the resolved socket (see ``SocketPath``), runs `body`, and closes.
    func withClient<R: Sendable>(_ body: (SwitchboardClient) async throws -> R) async throws -> R {
        try await CLIClient.with(socketPath: self.socketPath, body)
    }
}
