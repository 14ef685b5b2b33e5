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

    /// Runs a call that is safe to repeat, retried (on a new connection) when the
    /// server refused it before processing it: a drain or a restart in progress.
    static func call<R: Sendable>(socketPath: String, _ call: RetryableCall<R>) async throws -> R {
        var configuration = ClientConfiguration()
        configuration.clientName = "switchboard-cli/\(SwitchboardVersion.string)"
        return try await SwitchboardClient.call(call, socketPath: socketPath, configuration: configuration)
    }
}

extension GlobalOptions {
    /// Connects to the resolved socket (see ``SocketPath``), runs `body`, and closes.
    func withClient<R: Sendable>(_ body: (SwitchboardClient) async throws -> R) async throws -> R {
        try await CLIClient.with(socketPath: self.socketPath, body)
    }

    /// Runs a retryable call against the resolved socket (see ``CLIClient/call(socketPath:_:)``).
    func call<R: Sendable>(_ call: RetryableCall<R>) async throws -> R {
        try await CLIClient.call(socketPath: self.socketPath, call)
    }
}
