import SwitchboardProtocol

/// Everything the server needs to know that is not about sessions (those settings
/// live in `CoreConfiguration`): where to listen and the per-connection limits.
public struct ServerConfiguration: Sendable {
    /// Path of the Unix domain socket (at most 107 bytes: `sun_path`).
    public var socketPath: String
    /// Permission bits applied to the socket file after bind; connecting needs write access.
    public var socketMode: UInt32 = 0o660
    /// Reported in `Welcome`.
    public var serverName: String = "switchboard"
    /// Largest frame body accepted from a client; larger prefixes end the connection.
    public var maxFrameSize: UInt32 = ProtocolVersion.defaultMaxFrameSize
    /// Connections past this are told `RESOURCE_EXHAUSTED` and closed.
    public var maxConnections: Int = 1024
    /// Connections one uid may hold at once (0: no per-uid limit); past it the new
    /// connection is told `RESOURCE_EXHAUSTED` and closed. Administrators are bounded
    /// only by `maxConnections`. A quarter of the default total: one runaway user
    /// cannot take every connection slot from the others.
    public var maxConnectionsPerUID: Int = 256
    /// A connection with no open call that has sent nothing for this long is told
    /// GoAway and closed (`.zero`: never). A connection with an open call (a long
    /// prompt, a worker) is never closed by it.
    public var idleConnectionTimeout: Duration = .seconds(300)
    /// Who may connect, register workers and administer (see ``AccessPolicy``).
    public var accessPolicy = AccessPolicy()
    /// Calls one connection may have open at once; more are refused with `RESOURCE_EXHAUSTED`.
    public var maxConcurrentCallsPerConnection: Int = 128
    /// A client that has not sent `Hello` after this long is disconnected.
    public var handshakeTimeout: Duration = .seconds(10)
    /// How long in-flight calls may run on after a drain begins before they are cancelled.
    public var drainGracePeriod: Duration = .seconds(30)
    /// How often idle sessions are looked for and removed.
    public var idleSweepInterval: Duration = .seconds(10)
    /// Encoded output a streaming call may have waiting for the socket; past it the
    /// producing turn is suspended until the client reads.
    public var maxBufferedOutputBytesPerCall: Int = 1 << 20
    /// Socket activation, sd_notify and watchdog (see ``SystemdSettings``); empty by default.
    public var systemd = SystemdSettings()
    /// `--exit-idle-after`: with no connection and no turn for this long (and no
    /// session, when sessions are kept in memory only), the server stops
    /// accepting, drains and returns; nil = never.
    public var exitIdleAfter: Duration? = nil
    /// How often the server sends a heartbeat on each worker call.
    public var workerHeartbeatInterval: Duration = .seconds(1)
    /// A worker the server has heard nothing from for this long is dropped: its
    /// turns end UNAVAILABLE and it leaves its pool.
    public var workerHeartbeatTimeout: Duration = .seconds(5)

    public init(socketPath: String) {
        self.socketPath = socketPath
    }
}
