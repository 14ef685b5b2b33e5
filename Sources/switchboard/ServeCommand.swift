import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer

/// `switchboard serve`: runs the server until SIGTERM/SIGINT, then drains and exits 0.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Switchboard server on a Unix socket.",
        discussion: """
            Serves until SIGTERM or SIGINT, then stops accepting, lets running calls finish \
            (up to --drain-grace), removes the socket file and exits 0. Logs go to stderr. \
            If the socket cannot be bound (for example another server is live on it) the \
            reason is printed on stderr and the exit code is non-zero. \
            Under systemd socket activation (LISTEN_PID/LISTEN_FDS) the passed socket is used \
            instead of --socket and never removed; with $NOTIFY_SOCKET the server reports \
            READY=1, STATUS=, STOPPING=1 and watchdog pings (see docs/OPERATIONS.md).
            Every option can also be set in a --config file (JSON or YAML; keys are the \
            option names without the leading dashes); an option given here overrides the file.
            DURATION: \(DurationArgument.syntax).
            """
    )

    private static let coreDefaults = CoreConfiguration()
    private static let serverDefaults = ServerConfiguration(socketPath: "")

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp(
        "Configuration file, JSON (.json) or YAML (.yaml, .yml): any option below by its name without the leading dashes, and agents (see docs/OPERATIONS.md). Options given here override it.",
        valueName: "file"
    ))
    var config: String?

    @OptionGroup(title: "Access and per-uid limits") var security: ServeSecurityOptions
    @OptionGroup(title: "Durable sessions") var state: ServeStateOptions

    @Option(
        help: ArgumentHelp(
            "Permissions of the socket file, octal (default: 0\(String(serverDefaults.socketMode, radix: 8))).",
            valueName: "mode"
        ),
        transform: ServeCommand.parseMode
    )
    var socketMode: UInt32?

    @Option(help: ArgumentHelp("Backend of sessions that do not choose one: echo, exec or worker:QUEUE (default: \(coreDefaults.defaultBackend)).",
                               valueName: "name"))
    var backend: String?

    @Option(help: ArgumentHelp("Delay between the echo backend's tokens (default: 0).", valueName: "duration"),
            transform: DurationArgument.parse)
    var echoDelay: Duration?

    @Option(help: ArgumentHelp("Enables the exec backend: each turn runs /bin/sh -c CMD, prompt on stdin.", valueName: "cmd"))
    var execCommand: String?

    @Option(help: ArgumentHelp("Between SIGTERM and SIGKILL of a cancelled exec turn (default: 5s).", valueName: "duration"),
            transform: DurationArgument.parse)
    var killGrace: Duration?

    @Option(help: ArgumentHelp("Connections served at once (default: \(serverDefaults.maxConnections)).", valueName: "n"))
    var maxConnections: Int?

    @Option(help: ArgumentHelp("Open calls per connection (default: \(serverDefaults.maxConcurrentCallsPerConnection)).", valueName: "n"))
    var maxCallsPerConnection: Int?

    @Option(help: ArgumentHelp("Largest frame accepted (default: \(serverDefaults.maxFrameSize)).", valueName: "bytes"))
    var maxFrameSize: UInt32?

    @Option(help: ArgumentHelp("Prompts a session may queue behind its running turn (default: \(coreDefaults.maxQueuedPrompts)).", valueName: "n"))
    var maxQueuedPrompts: Int?

    @Option(help: ArgumentHelp("Sessions held at most (default: \(coreDefaults.maxSessions)).", valueName: "n"))
    var maxSessions: Int?

    @Option(help: ArgumentHelp("Idle sessions are removed after this long (default: \(DurationArgument.format(coreDefaults.idleTimeout))).",
                               valueName: "duration"),
            transform: DurationArgument.parse)
    var idleTimeout: Duration?

    @Option(help: ArgumentHelp("Longest a turn may run (default: \(DurationArgument.format(coreDefaults.turnDeadline))).",
                               valueName: "duration"),
            transform: DurationArgument.parse)
    var turnDeadline: Duration?

    @Option(help: ArgumentHelp("A turn without output for this long is ended (default: \(DurationArgument.format(coreDefaults.stallTimeout))).",
                               valueName: "duration"),
            transform: DurationArgument.parse)
    var stallTimeout: Duration?

    @Option(help: ArgumentHelp("On shutdown, how long running calls may finish (default: \(DurationArgument.format(serverDefaults.drainGracePeriod))).",
                               valueName: "duration"),
            transform: DurationArgument.parse)
    var drainGrace: Duration?

    @Option(help: ArgumentHelp("A connection must send Hello within this (default: \(DurationArgument.format(serverDefaults.handshakeTimeout))).",
                               valueName: "duration"),
            transform: DurationArgument.parse)
    var handshakeTimeout: Duration?

    @Option(help: ArgumentHelp("How often idle sessions are looked for (default: \(DurationArgument.format(serverDefaults.idleSweepInterval))).",
                               valueName: "duration"),
            transform: DurationArgument.parse)
    var idleSweepInterval: Duration?

    @Option(help: ArgumentHelp("Output buffered per streaming call before its turn is slowed (default: \(serverDefaults.maxBufferedOutputBytesPerCall)).",
                               valueName: "bytes"))
    var maxBufferedOutput: Int?

    @Option(help: ArgumentHelp("Exit (code 0) after this long with no connection and no running turn (and, with --state-dir none, no session); for socket activation.",
                               valueName: "duration"),
            transform: DurationArgument.parse)
    var exitIdleAfter: Duration?

    @Option(help: ArgumentHelp("How often worker calls get a heartbeat (default: \(DurationArgument.format(serverDefaults.workerHeartbeatInterval))).",
                               valueName: "duration"),
            transform: DurationArgument.parse)
    var workerHeartbeatInterval: Duration?

    @Option(help: ArgumentHelp("A worker silent for this long is dropped, its turns end UNAVAILABLE (default: \(DurationArgument.format(serverDefaults.workerHeartbeatTimeout))).",
                               valueName: "duration"),
            transform: DurationArgument.parse)
    var workerHeartbeatTimeout: Duration?

    @Option(help: ArgumentHelp("With socket activation (LISTEN_FDS) and LISTEN_FDNAMES, the socket to adopt (default: switchboard).",
                               valueName: "name"))
    var listenFDName: String?

    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (default: info).", valueName: "level"),
            transform: ServeCommand.parseLogLevel)
    var logLevel: Logger.Level?

    mutating func validate() throws {
        // The file first: what it sets is checked there (naming the file and the
        // key) and fills the options the command line left unset, so the checks
        // below see the merged values.
        if let config { _ = try applyConfigFile(config) }
        if let socketMode, socketMode > 0o777 { throw ValidationError("--socket-mode must be at most 0777") }
        let positiveCounts: [(String, Int?)] = [
            ("--max-connections", maxConnections),
            ("--max-calls-per-connection", maxCallsPerConnection),
            ("--max-queued-prompts", maxQueuedPrompts),
            ("--max-sessions", maxSessions),
            ("--max-buffered-output", maxBufferedOutput),
        ]
        for (name, value) in positiveCounts {
            if let value, value <= 0 { throw ValidationError("\(name) must be positive") }
        }
        if let maxFrameSize, maxFrameSize < 1024 { throw ValidationError("--max-frame-size must be at least 1024") }
        let positiveDurations: [(String, Duration?)] = [
            ("--idle-timeout", idleTimeout),
            ("--turn-deadline", turnDeadline),
            ("--stall-timeout", stallTimeout),
            ("--handshake-timeout", handshakeTimeout),
            ("--idle-sweep-interval", idleSweepInterval),
            ("--exit-idle-after", exitIdleAfter),
            ("--worker-heartbeat-interval", workerHeartbeatInterval),
            ("--worker-heartbeat-timeout", workerHeartbeatTimeout),
        ]
        for (name, value) in positiveDurations {
            if let value, value <= .zero { throw ValidationError("\(name) must be positive") }
        }
        if let execCommand, execCommand.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--exec-command must not be empty")
        }
        let backend = self.backend ?? Self.coreDefaults.defaultBackend
        do {
            try Self.checkBackendName(backend)
        } catch {
            throw ValidationError(backend.hasPrefix("worker:") ? "--backend \(backend): \(error.message)" : error.message)
        }
        if backend == "exec", execCommand == nil { throw ValidationError("--backend exec needs --exec-command") }
        if listenFDName?.isEmpty == true { throw ValidationError("--listen-fd-name must not be empty") }
    }

    func run() async throws {
        let level = logLevel ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "switchboard")
        logger.logLevel = level
        // validate() merged the file into the options; its agents section is read
        // again here (a value a command cannot keep between validate and run).
        if let config {
            var file = self
            Self.logAgentsNotYetServed(try file.applyConfigFile(config), logger: logger)
        }

        var core = CoreConfiguration()
        if let backend { core.defaultBackend = backend }
        if let idleTimeout { core.idleTimeout = idleTimeout }
        if let turnDeadline { core.turnDeadline = turnDeadline }
        if let stallTimeout { core.stallTimeout = stallTimeout }
        if let maxQueuedPrompts { core.maxQueuedPrompts = maxQueuedPrompts }
        if let maxSessions { core.maxSessions = maxSessions }
        security.apply(to: &core)
        state.apply(to: &core)

        let exec = execCommand.map { command in
            ExecBackend(command: ["/bin/sh", "-c", command], killGrace: killGrace ?? .seconds(5))
        }
        let backends = BackendRegistry(echo: EchoBackend(tokenDelay: echoDelay ?? .zero), exec: exec)

        let socketPath = global.socketPath
        var server = ServerConfiguration(socketPath: socketPath)
        if let socketMode { server.socketMode = socketMode }
        if let maxFrameSize { server.maxFrameSize = maxFrameSize }
        if let maxConnections { server.maxConnections = maxConnections }
        if let maxCallsPerConnection { server.maxConcurrentCallsPerConnection = maxCallsPerConnection }
        if let handshakeTimeout { server.handshakeTimeout = handshakeTimeout }
        if let drainGrace { server.drainGracePeriod = drainGrace }
        if let idleSweepInterval { server.idleSweepInterval = idleSweepInterval }
        if let maxBufferedOutput { server.maxBufferedOutputBytesPerCall = maxBufferedOutput }
        try security.apply(to: &server)
        // LISTEN_FDS/NOTIFY_SOCKET/WATCHDOG_USEC (read once, then cleared).
        server.systemd = try SystemdSettings.fromEnvironment(listenFDName: listenFDName ?? "switchboard")
        server.exitIdleAfter = exitIdleAfter
        if let workerHeartbeatInterval { server.workerHeartbeatInterval = workerHeartbeatInterval }
        if let workerHeartbeatTimeout { server.workerHeartbeatTimeout = workerHeartbeatTimeout }
        if let adopted = server.systemd.listeningPath { server.socketPath = adopted }

        // A live server on the socket refuses this start before anything is
        // created on disk (an adopted socket is systemd's, and known to be free).
        if server.systemd.listeningPath == nil {
            do {
                try SwitchboardServer.checkSocketPath(socketPath)
            } catch {
                throw CLIFailure("cannot serve on \(socketPath): \(error.description)")
            }
        }

        // Opened once the rest of the configuration is known to be good; a state
        // directory held by another server is refused here, before binding. What
        // this start creates is removed again if binding fails (not on a refusal
        // here: the directory may be another server's that was made meanwhile).
        let missingDirectories = state.missingDirectories()
        let store: any SessionStore
        do {
            store = try state.openStore(logger: logger)
        } catch {
            throw CLIFailure("cannot open the state directory: \((error as? SwitchboardError)?.description ?? "\(error)")")
        }
        let registry = SessionRegistry(configuration: core, backends: backends, logger: logger, store: store)
        do {
            try await registry.restore()
        } catch {
            try? await store.close()
            throw CLIFailure("cannot load the sessions from \(store.location): \(error)")
        }

        let service = SwitchboardServer(configuration: server, registry: registry, logger: logger)
        // The server returns by itself after --exit-idle-after: that is a normal end.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
            try? await store.close()
        } catch let error as SwitchboardError {
            try? await store.close()
            if service.stoppedBeforeListening { ServeStateOptions.removeCreated(missingDirectories, logger: logger) }
            throw error  // the server's message already names the socket
        } catch {
            try? await store.close()
            if service.stoppedBeforeListening { ServeStateOptions.removeCreated(missingDirectories, logger: logger) }
            throw CLIFailure("cannot serve on \(socketPath): \(error)")
        }
    }

    /// `echo`, `exec` or `worker:QUEUE` with a valid queue name.
    static func checkBackendName(_ backend: String) throws(ValidationError) {
        if backend == "echo" || backend == "exec" { return }
        guard backend.hasPrefix("worker:") else {
            throw ValidationError("unknown backend \"\(backend)\": expected echo, exec or worker:QUEUE")
        }
        do {
            try WorkerPools.validateQueueName(String(backend.dropFirst("worker:".count)))
        } catch {
            throw ValidationError(error.message)
        }
    }

    static func parseMode(_ text: String) throws(ValidationError) -> UInt32 {
        let digits = text.hasPrefix("0o") ? String(text.dropFirst(2)) : text
        guard !digits.isEmpty, let mode = UInt32(digits, radix: 8) else {
            throw ValidationError("invalid socket mode \"\(text)\": expected octal such as 0660")
        }
        return mode
    }

    static func parseLogLevel(_ text: String) throws(ValidationError) -> Logger.Level {
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("invalid log level \"\(text)\": expected one of \(names)")
        }
        return level
    }
}
