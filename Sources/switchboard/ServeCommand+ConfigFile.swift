import ArgumentParser
import Foundation
import Logging
import SwitchboardCore

extension ServeCommand {
    /// Reads `--config` and fills every option the command line left unset: a
    /// flag given on the command line wins over the file, for lists too (the
    /// flag's values replace the file's). Every key of the file is checked, the
    /// ones a flag overrides included, and an unknown key is refused. Returns the
    /// file's agents section.
    mutating func applyConfigFile(_ path: String) throws(ValidationError) -> AgentsConfiguration {
        if path.isEmpty { throw ValidationError("--config must not be empty") }
        var file = try ServeConfigFile(path: path)

        fill(&global.socket, try file.nonEmptyString(["socket"]))
        fill(&socketMode, try file.socketMode(["socket-mode"]))
        if let fileBackend = try file.nonEmptyString(["backend"]) {
            do {
                try ServeCommand.checkBackendName(fileBackend)
            } catch {
                throw file.failure(["backend"], error.message)
            }
            fill(&backend, fileBackend)
        }
        fill(&echoDelay, try file.duration(["echo-delay"]))
        if let command = try file.string(["exec-command"]) {
            if command.trimmingCharacters(in: .whitespaces).isEmpty { throw file.failure(["exec-command"], "must not be empty") }
            fill(&execCommand, command)
        }
        fill(&killGrace, try file.positiveDuration(["kill-grace"]))
        fill(&maxConnections, try file.positiveInt(["max-connections"]))
        fill(&maxCallsPerConnection, try file.positiveInt(["max-calls-per-connection"]))
        fill(&maxFrameSize, try file.unsigned(["max-frame-size"], minimum: UInt32(1024)))
        fill(&maxQueuedPrompts, try file.positiveInt(["max-queued-prompts"]))
        fill(&maxSessions, try file.positiveInt(["max-sessions"]))
        fill(&idleTimeout, try file.positiveDuration(["idle-timeout"]))
        fill(&turnDeadline, try file.positiveDuration(["turn-deadline"]))
        fill(&stallTimeout, try file.positiveDuration(["stall-timeout"]))
        fill(&drainGrace, try file.duration(["drain-grace"]))
        fill(&handshakeTimeout, try file.positiveDuration(["handshake-timeout"]))
        fill(&idleSweepInterval, try file.positiveDuration(["idle-sweep-interval"]))
        fill(&maxBufferedOutput, try file.positiveInt(["max-buffered-output"]))
        fill(&exitIdleAfter, try file.positiveDuration(["exit-idle-after"]))
        fill(&workerHeartbeatInterval, try file.positiveDuration(["worker-heartbeat-interval"]))
        fill(&workerHeartbeatTimeout, try file.positiveDuration(["worker-heartbeat-timeout"]))
        fill(&listenFDName, try file.nonEmptyString(["listen-fd-name"]))
        if let text = try file.string(["log-level"]) {
            do {
                fill(&logLevel, try ServeCommand.parseLogLevel(text))
            } catch {
                throw file.failure(["log-level"], error.message)
            }
        }

        // Access and per-uid limits.
        fill(&security.policy, try file.nonEmptyString(["policy"]))
        fill(&security.allowUID, try file.stringList(["allow-uid"]))
        fill(&security.allowGID, try file.stringList(["allow-gid"]))
        fill(&security.workerUID, try file.stringList(["worker-uid"]))
        fill(&security.workerGID, try file.stringList(["worker-gid"]))
        fill(&security.adminUID, try file.stringList(["admin-uid"]))
        fill(&security.adminGID, try file.stringList(["admin-gid"]))
        fill(&security.maxConnectionsPerUID, try file.nonNegativeInt(["max-connections-per-uid"]))
        fill(&security.maxSessionsPerUID, try file.nonNegativeInt(["max-sessions-per-uid"]))
        fill(&security.idleConnectionTimeout, try file.duration(["idle-connection-timeout"]))
        // The access policy the merged values make (a bad user name or policy
        // file from the config is refused here, naming the config file).
        do {
            _ = try security.accessPolicy()
        } catch {
            throw ValidationError("--config \(path): \(error.message)")
        }

        // Durable sessions.
        fill(&state.stateDir, try file.nonEmptyString(["state-dir"]))
        fill(&state.retainTurns, try file.unsigned(["retain-turns"], minimum: UInt32(1)))
        fill(&state.retainOutputBytes, try file.unsigned(["retain-output-bytes"], minimum: UInt64(1)))
        fill(&state.retainAge, try file.positiveDuration(["retain-age"]))

        let agents = try file.agents(defaultDirectory: FileManager.default.currentDirectoryPath)
        try file.rejectUnknownKeys()
        return agents
    }

    /// Logged at start when the file names agents: they are parsed and checked,
    /// but the `agent:NAME` backend arrives in a later version.
    static func logAgentsNotYetServed(_ agents: AgentsConfiguration, logger: Logger) {
        guard !agents.agents.isEmpty else { return }
        logger.warning(
            "the configuration names agents, but this version has no agent backend yet: sessions cannot use agent:NAME",
            metadata: ["agents": "\(agents.agents.keys.sorted().joined(separator: ","))", "max-live-agents": "\(agents.maxLiveAgents)"]
        )
    }
}

/// Sets an option from the file only when the command line did not.
private func fill<Value>(_ option: inout Value?, _ fileValue: Value?) {
    if option == nil { option = fileValue }
}

private func fill(_ option: inout [String], _ fileValue: [String]?) {
    if option.isEmpty, let fileValue { option = fileValue }
}

extension ServeConfigFile {
    /// The socket file's mode: octal text (`"0660"`, `"0o660"`, YAML's unquoted
    /// `0660`), or a JSON number whose digits are read as octal (`660`).
    mutating func socketMode(_ key: [String]) throws(ValidationError) -> UInt32? {
        // Text first: YAML reads every scalar as text (so `0660` keeps its digits,
        // where Yams' integer rules would take a leading 0 as octal already).
        let text: String
        if let string = try? string(key) {
            text = string
        } else if let number = try int(key) {
            text = String(number)
        } else {
            return nil
        }
        let mode: UInt32
        do {
            mode = try ServeCommand.parseMode(text)
        } catch {
            throw failure(key, error.message)
        }
        if mode > 0o777 { throw failure(key, "must be at most 0777") }
        return mode
    }
}
