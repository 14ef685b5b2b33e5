#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore
import NIOPosix
import SwitchboardProtocol

/// The server's systemd side: adopting an activated socket, READY/STATUS/WATCHDOG
/// notifications and the exit-on-idle watch. Kept out of `SwitchboardServer` so the
/// server's own life stays in one place.
enum SystemdLifecycle {
    /// Adopts a listening socket passed by socket activation.
    ///
    /// NIO calls `listen()` again on an adopted descriptor; with `SOMAXCONN` as the
    /// backlog that keeps systemd's default (`Backlog=` is capped by the kernel's
    /// `net.core.somaxconn` either way). Connections already queued stay queued.
    static func adopt(
        _ fd: Int32,
        context: ServerContext,
        idleMonitor: IdleExitMonitor,
        childInitializer: @escaping @Sendable (any Channel, ServerContext) -> EventLoopFuture<Void>
    ) async throws -> any Channel {
        let path = context.configuration.systemd.listeningPath ?? "fd \(fd)"
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.backlog, value: Int32(SOMAXCONN))
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(idleMonitor.makeAcceptCounter())
                }
            }
            .childChannelInitializer { channel in
                childInitializer(channel, context)
            }
        do {
            let channel = try await bootstrap.withBoundSocket(fd).get()
            context.logger.info("adopted socket-activated listener", metadata: ["fd": "\(fd)", "socket": "\(path)"])
            return channel
        } catch {
            throw SwitchboardError(
                code: .unavailable,
                message: "cannot listen on the socket-activated descriptor \(fd) (\(path)): \(error)",
                cause: error
            )
        }
    }

    /// Sends READY=1 and starts the periodic STATUS refresh, the watchdog pings and
    /// the exit-on-idle watch, as configured. The returned tasks are cancelled when
    /// the server has stopped; they keep running during a drain (the watchdog must).
    static func start(
        notifier: SystemdNotifier?,
        idleMonitor: IdleExitMonitor,
        configuration: ServerConfiguration,
        context: ServerContext,
        serverChannel: any Channel,
        beginDrain: @escaping @Sendable () -> Void
    ) -> [RepeatedTask] {
        let eventLoop = serverChannel.eventLoop
        var tasks: [RepeatedTask] = []
        if let notifier {
            notifier.ready(status: summary(context))
            let every = TimeAmount(configuration.systemd.statusInterval)
            tasks.append(eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
                notifier.status(summary(context))
            })
            if let interval = configuration.systemd.watchdogInterval {
                let every = TimeAmount(interval)
                notifier.watchdog()
                tasks.append(eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
                    notifier.watchdog()
                })
            }
        }
        if let limit = configuration.exitIdleAfter {
            let logger = context.logger
            tasks.append(idleMonitor.watch(limit: limit, registry: context.registry, on: eventLoop) {
                logger.info("idle, exiting", metadata: ["exit_idle_after": "\(limit)"])
                beginDrain()
            })
        }
        return tasks
    }

    /// The one-line `STATUS=` summary.
    static func summary(_ context: ServerContext) -> String {
        let statistics = context.registry.statistics()
        let connections = context.connectionCount.load(ordering: .relaxed)
        let state = context.draining.load(ordering: .relaxed) ? "draining" : "serving"
        return "\(state): \(connections) connections, \(statistics.sessionsTotal) sessions "
            + "(\(statistics.sessionsBusy) busy), \(statistics.turnsInFlight) turns in flight, "
            + "\(statistics.queuedPrompts) queued"
    }
}
