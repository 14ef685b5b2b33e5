// Owns one agent mid-turn until it is SIGKILLed: the server-death test's child.
// Usage: switchboard-agent-host-helper KEEPER PROGRAM [ARG...]
// Prints "group <pgid> agent <pid>" once the agent is busy with a prompt and has
// logged "child pid" on stderr (the silent agent with --spawn-child), then waits.
#if canImport(Glibc)
import Glibc
#endif
import SwitchboardAgentHost

func say(_ text: String, to fd: Int32) {
    let bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 2 else {
    say("usage: switchboard-agent-host-helper KEEPER PROGRAM [ARG...]", to: 2)
    exit(2)
}
do {
    let connection = try AgentConnection.spawn(
        launch: AgentLaunch(command: Array(arguments.dropFirst()), keeperPath: arguments[0]),
        permissionPolicy: .deny
    )
    _ = try await connection.handshake(cwd: "/", timeout: .seconds(120))
    let prompt = Task { try await connection.prompt("hang", onUpdate: { _ in }) }
    while !connection.process.stderrTail.contains("child pid") {
        if let end = connection.exit {
            say("agent ended: \(end)", to: 2)
            exit(1)
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    say("group \(connection.process.processGroupID) agent \(connection.process.agentPID ?? 0)", to: 1)
    _ = try await prompt.value
} catch {
    say("helper: \(error)", to: 2)
    exit(1)
}
