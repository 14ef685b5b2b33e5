#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardTransport

/// The Switchboard daemon's listener: a Unix-socket server speaking the
/// length-prefixed frame protocol, as a ServiceLifecycle `Service`.
///
/// `run()` binds, serves until a graceful shutdown (or cancellation of its task),
/// then drains: every connection gets GoAway(OK), open calls get
/// ``ServerConfiguration/drainGracePeriod`` to finish, whatever is left is ended
/// with UNAVAILABLE "server shutting down", and the socket file is removed (only
/// if it is still the one this server bound).
public final class SwitchboardServer: Service, Sendable {
    private let context: ServerContext
    private let state = Mutex(State.idle(listenWaiters: []))
    /// sd_notify target (``ServerConfiguration/systemd``), nil when not notifying.
    private let notifier: SystemdNotifier?
    /// Counts accepted connections for `--exit-idle-after`.
    private let idleMonitor = IdleExitMonitor()

    private typealias ListenWaiter = CheckedContinuation<Void, any Error>

    /// The server's life, as one explicit state (like hummingbird's `Server`).
    private enum State {
        case idle(listenWaiters: [ListenWaiter])
        case starting(listenWaiters: [ListenWaiter], drainRequested: Bool)
        /// `drainSignal` is `run()` waiting for the drain to begin.
        case listening(serverChannel: any Channel, drainSignal: CheckedContinuation<Void, Never>?)
        case draining(serverChannel: any Channel)
        /// `failure` says why the server never listened (or nil after a normal drain).
        case stopped(failure: SwitchboardError?)
    }

    public init(
        configuration: ServerConfiguration,
        registry: SessionRegistry,
        logger: Logger = Logger(label: "switchboard.server")
    ) {
        self.notifier = configuration.systemd.notifySocket.flatMap { SystemdNotifier(socket: $0, logger: logger) }
        let maxQueued = UInt32(clamping: registry.configuration.maxQueuedPrompts)
        self.context = ServerContext(
            configuration: configuration,
            registry: registry,
            logger: logger,
            defaultMaxQueuedPrompts: maxQueued
        )
    }

    private var logger: Logger { context.logger }
    private var configuration: ServerConfiguration { context.configuration }

    // MARK: Service

    /// Binds, serves until graceful shutdown (ServiceLifecycle) or task
    /// cancellation, then drains (see the type's documentation). Returns
    /// normally after a drain; throws if the socket cannot be bound.
    public func run() async throws {
        try state.withLockAnnotated { state throws(SwitchboardError) in
            switch state {
            case .idle(let waiters):
                state = .starting(listenWaiters: waiters, drainRequested: false)
            case .stopped(let failure?):
                throw failure
            case .starting, .listening, .draining, .stopped:
                throw SwitchboardError(code: .failedPrecondition, message: "SwitchboardServer.run() may be called only once")
            }
        }

        let serverChannel: any Channel
        let socketIdentity: SocketFile.Identity?
        do {
            (serverChannel, socketIdentity) = try await bind()
        } catch {
            let failure = error as? SwitchboardError
                ?? SwitchboardError(code: .unavailable, message: "cannot listen on \(configuration.socketPath)", cause: error)
            let waiters = state.withLockAnnotated { state -> [ListenWaiter] in
                defer { state = .stopped(failure: failure) }
                if case .starting(let waiters, _) = state { return waiters }
                return []
            }
            for waiter in waiters { waiter.resume(throwing: failure) }
            logger.error("cannot start: \(failure.message)")
            throw failure
        }

        let (waiters, drainRequested) = state.withLockAnnotated { state -> ([ListenWaiter], Bool) in
            guard case .starting(let waiters, let drainRequested) = state else {
                preconditionFailure("only run() leaves the starting state")
            }
            state = .listening(serverChannel: serverChannel, drainSignal: nil)
            return (waiters, drainRequested)
        }
        for waiter in waiters { waiter.resume() }
        logger.info("listening", metadata: ["socket": "\(configuration.socketPath)"])
        // A listening socket that dies on its own (not by a drain) ends the
        // server the same orderly way instead of leaving run() waiting forever.
        serverChannel.closeFuture.whenComplete { _ in self.beginDrain() }
        // READY=1 (if notifying) before any STOPPING=1 of an early drain.
        let systemdTasks = SystemdLifecycle.start(
            notifier: notifier,
            idleMonitor: idleMonitor,
            configuration: configuration,
            context: context,
            serverChannel: serverChannel,
            beginDrain: { self.beginDrain() }
        )
        if drainRequested { beginDrain() }

        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withDiscardingTaskGroup { group in
                    group.addTask { await self.sweepIdleSessions() }
                    await self.waitForDrainToBegin()
                    group.cancelAll()
                }
            } onCancel: {
                self.beginDrain()
            }
        } onGracefulShutdown: {
            self.beginDrain()
        }

        await drain(serverChannel: serverChannel, socketIdentity: socketIdentity)
        for task in systemdTasks { task.cancel() }
        state.withLockAnnotated { $0 = .stopped(failure: nil) }
        logger.info("stopped")
    }

    /// True once the server has stopped without ever listening (its socket could
    /// not be bound, or it was stopped before it started): nothing was served, so
    /// `serve` may remove a state directory that this start created.
    public var stoppedBeforeListening: Bool {
        state.withLockAnnotated { state in
            if case .stopped(failure: .some) = state { return true }
            return false
        }
    }

    /// Resolves once the socket is bound and accepting (tests, readiness); throws
    /// if the server stopped (or failed) before that.
    public func waitUntilListening() async throws {
        try await withCheckedThrowingContinuation { (continuation: ListenWaiter) in
            let result: Result<Void, SwitchboardError>? = state.withLockAnnotated { state in
                switch state {
                case .idle(var waiters):
                    waiters.append(continuation)
                    state = .idle(listenWaiters: waiters)
                    return nil
                case .starting(var waiters, let drainRequested):
                    waiters.append(continuation)
                    state = .starting(listenWaiters: waiters, drainRequested: drainRequested)
                    return nil
                case .listening, .draining:
                    return .success(())
                case .stopped(let failure):
                    return .failure(failure ?? SwitchboardError(code: .unavailable, message: "the server has stopped"))
                }
            }
            if let result { continuation.resume(with: result.mapError { $0 as any Error }) }
        }
    }

    /// Starts the drain now (same as a graceful shutdown). Safe to call from any
    /// thread, any number of times.
    public func beginDrain() {
        enum Action {
            case none
            case failWaiters([ListenWaiter])
            case drain(serverChannel: any Channel, signal: CheckedContinuation<Void, Never>?)
        }
        let action: Action = state.withLockAnnotated { state in
            switch state {
            case .idle(let waiters):
                state = .stopped(failure: SwitchboardError(code: .unavailable, message: "the server was stopped before it started"))
                return .failWaiters(waiters)
            case .starting(let waiters, _):
                state = .starting(listenWaiters: waiters, drainRequested: true)
                return .none
            case .listening(let serverChannel, let signal):
                state = .draining(serverChannel: serverChannel)
                return .drain(serverChannel: serverChannel, signal: signal)
            case .draining, .stopped:
                return .none
            }
        }
        switch action {
        case .none:
            return
        case .failWaiters(let waiters):
            let failure = SwitchboardError(code: .unavailable, message: "the server was stopped before it started")
            for waiter in waiters { waiter.resume(throwing: failure) }
        case .drain(let serverChannel, let signal):
            logger.info("draining", metadata: ["grace_period": "\(configuration.drainGracePeriod)"])
            notifier?.stopping(status: "draining (grace \(configuration.drainGracePeriod))")
            let connections = context.startDraining()
            serverChannel.close(promise: nil)
            for connection in connections {
                connection.execute { $0.beginGoingAway() }
            }
            signal?.resume()
        }
    }

    // MARK: Test hooks

    /// Most encoded output bytes any streaming call has had waiting in its writer.
    package var maxPendingOutboundBytes: Int {
        context.maxPendingOutboundBytes.load(ordering: .relaxed)
    }

    /// Connections currently admitted.
    package var connectionCount: Int {
        context.connectionCount.load(ordering: .relaxed)
    }

    /// Admitted connections whose channel is active (it can be written to): an
    /// admitted connection is not yet, for a moment after its accept.
    package var activeConnectionCount: Int {
        context.activeConnectionCount.load(ordering: .relaxed)
    }

    // MARK: Internals

    private func waitForDrainToBegin() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLockAnnotated { state in
                guard case .listening(let serverChannel, nil) = state else { return true }
                state = .listening(serverChannel: serverChannel, drainSignal: continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Stop accepting (done by `beginDrain`), let open calls finish within the
    /// grace period, then end the rest and close what is left. Not cancellable:
    /// once begun, a drain runs to its end.
    private func drain(serverChannel: any Channel, socketIdentity: SocketFile.Identity?) async {
        let eventLoop = serverChannel.eventLoop
        let graceEnds = ContinuousClock.now + configuration.drainGracePeriod
        try? await serverChannel.closeFuture.get()
        // Removed now, not at the end: a new server may bind the path while this
        // one drains (and the identity check keeps us from removing its file).
        if let socketIdentity {
            SocketFile.remove(path: configuration.socketPath, ifIdentityIs: socketIdentity)
        }

        if await !context.waitForNoConnections(timeout: configuration.drainGracePeriod, on: eventLoop) {
            let remaining = context.liveConnections()
            logger.notice("drain grace period over, ending the remaining calls", metadata: ["connections": "\(remaining.count)"])
            for connection in remaining {
                try? await connection.submit { $0.cancelCallsForShutdown() }.get()
            }
            context.registry.cancelAllTurns(reason: "server shutting down")
            if await !context.waitForNoConnections(timeout: .seconds(5), on: eventLoop) {
                for connection in context.liveConnections() {
                    connection.channel.close(promise: nil)
                }
                _ = await context.waitForNoConnections(timeout: .seconds(5), on: eventLoop)
            }
        }
        // Detached turns (their clients are gone) may still be running: they get
        // what is left of the grace period, then end like the rest.
        let left = ContinuousClock.now.duration(to: graceEnds)
        if left > .zero {
            await context.waitForPromptTasks(timeout: left, on: eventLoop)
        }
        context.registry.cancelAllTurns(reason: "server shutting down")
        await context.waitForPromptTasks(timeout: .seconds(5), on: eventLoop)
        do {
            try await context.registry.store.flush()
        } catch {
            logger.error("the session store could not be flushed: \(error)")
        }
    }

    private func sweepIdleSessions() async {
        let interval = configuration.idleSweepInterval
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            let removed = context.registry.removeIdleSessions()
            if !removed.isEmpty {
                logger.info("removed idle sessions", metadata: ["sessions": "\(removed.joined(separator: ","))"])
            }
        }
    }

    private func bind() async throws -> (any Channel, SocketFile.Identity?) {
        if let fd = configuration.systemd.listeningDescriptor {
            // Socket activation: the socket and its path belong to the service
            // manager; no identity, so the drain never unlinks it.
            return (try await SystemdLifecycle.adopt(fd, context: context, idleMonitor: idleMonitor) { channel, context in
                Self.initializeConnection(channel, server: context)
            }, nil)
        }
        let path = configuration.socketPath
        let backlog: Int32 = 256
        try SocketFile.prepare(path: path)
        let fd = try SocketFile.bindListeningSocket(path: path, backlog: backlog)
        do {
            try SocketFile.setMode(path: path, mode: configuration.socketMode)
        } catch {
            close(fd)
            unlink(path)
            throw error
        }
        // Taken after the chmod, which changes the file's change time.
        let identity = SocketFile.identity(path: path)
        let context = self.context
        let idleMonitor = self.idleMonitor
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.backlog, value: backlog)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(idleMonitor.makeAcceptCounter())
                }
            }
            .childChannelInitializer { channel in
                Self.initializeConnection(channel, server: context)
            }
        do {
            // NIO owns the descriptor from here on (and closes it with the channel).
            let channel = try await bootstrap.withBoundSocket(fd).get()
            return (channel, identity)
        } catch {
            if let identity { SocketFile.remove(path: path, ifIdentityIs: identity) }
            throw SwitchboardError(code: .unavailable, message: "cannot listen on \(path): \(error)", cause: error)
        }
    }

    /// Runs on the new connection's event loop: reads the peer's credentials,
    /// checks the access policy, admits the connection (or refuses it with a
    /// GoAway, logged with the peer's uid and pid) and builds its pipeline.
    private static func initializeConnection(_ channel: any Channel, server: ServerContext) -> EventLoopFuture<Void> {
        PeerCredentials.read(from: channel).flatMapThrowing { peer in
            let pipeline = channel.pipeline.syncOperations
            let policy = server.configuration.accessPolicy
            guard policy.mayConnect(uid: peer.uid, gid: peer.gid) else {
                let message = "uid \(peer.uid) (gid \(peer.gid)) may not connect to this server (see its access policy)"
                server.logger.notice(
                    "connection refused: \(message)",
                    metadata: ["peer_pid": "\(peer.pid)", "peer_uid": "\(peer.uid)", "peer_gid": "\(peer.gid)"]
                )
                let goAway = GoAway(lastCallID: 0, code: .permissionDenied, message: message)
                try pipeline.addHandler(RejectConnectionHandler(goAway: goAway))
                return
            }
            let grant = policy.grant(uid: peer.uid, gid: peer.gid)
            let connectionID = server.makeConnectionID()
            let handler = ConnectionHandler(server: server, connectionID: connectionID, peer: peer, grant: grant)
            let handle = ConnectionHandle(
                connectionID: connectionID,
                channel: channel,
                handler: NIOLoopBound(handler, eventLoop: channel.eventLoop),
                peerUID: peer.uid,
                limitedPerUID: !grant.isAdmin
            )
            switch server.admit(handle) {
            case .accepted:
                channel.closeFuture.whenComplete { _ in server.connectionClosed(connectionID) }
                // A Hello is a few dozen bytes: before it, at most 64 KiB are buffered.
                let decoder = FrameDecoder(maximumFrameSize: server.configuration.maxFrameSize, maximumFirstFrameSize: 64 * 1024)
                try pipeline.addHandler(ByteToMessageHandler(decoder))
                try pipeline.addHandler(handler)
            case .rejected(let code, let message):
                server.logger.notice(
                    "connection refused: \(message)",
                    metadata: ["peer_pid": "\(peer.pid)", "peer_uid": "\(peer.uid)"]
                )
                try pipeline.addHandler(RejectConnectionHandler(goAway: GoAway(lastCallID: 0, code: code, message: message)))
            }
        }
    }
}
