import Foundation

/// Where the server's socket is, in one place for every subcommand (client and `serve`).
///
/// `--socket PATH`, else `$SWITCHBOARD_SOCKET`, else `$XDG_RUNTIME_DIR/switchboard.sock`
/// when `XDG_RUNTIME_DIR` is set, else `/run/switchboard/switchboard.sock` (the path the
/// system units use).
enum SocketPath {
    static let environmentVariable = "SWITCHBOARD_SOCKET"
    static let systemDefault = "/run/switchboard/switchboard.sock"
    static let fileName = "switchboard.sock"

    /// The rule, for `--help`.
    static let rule = """
        Default socket: --socket, else $SWITCHBOARD_SOCKET, else \
        $XDG_RUNTIME_DIR/\(fileName) when XDG_RUNTIME_DIR is set, else \(systemDefault).
        """

    static func resolve(option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let option, !option.isEmpty { return option }
        if let path = environment[environmentVariable], !path.isEmpty { return path }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty {
            return runtime.hasSuffix("/") ? runtime + fileName : runtime + "/" + fileName
        }
        return systemDefault
    }
}
