/// One frame of the wire protocol: the unit that the 4-byte length prefix delimits.
///
/// `callID` is 0 for connection-scoped frames (hello, welcome, ping, pong, goAway).
public struct Frame: Hashable, Sendable {
    public var callID: UInt64
    public var kind: Kind
    /// Set by decoding when one of the frame's `string` fields holds a NUL byte or
    /// is not valid UTF-8 on the wire (the decoded value is then cut short or
    /// repaired, and must not be used): the receiver refuses the frame, or the call
    /// it belongs to, with ``InvalidStringField/error``. Always nil when encoding.
    public var invalidString: InvalidStringField?

    public init(callID: UInt64 = 0, kind: Kind, invalidString: InvalidStringField? = nil) {
        self.callID = callID
        self.kind = kind
        self.invalidString = invalidString
    }

    public enum Kind: Hashable, Sendable {
        case hello(Hello)
        case welcome(Welcome)
        case start(CallStart)
        case message(CallMessage)
        case halfClose
        case cancel(reason: String)
        case end(CallEnd)
        case ping(nonce: UInt64)
        case pong(nonce: UInt64)
        case goAway(GoAway)
    }
}

/// The protocol versions this build speaks, and the defaults both sides assume.
public enum ProtocolVersion {
    public static let current: UInt32 = 1
    public static let minimum: UInt32 = 1
    /// Largest frame accepted unless the handshake says otherwise (4 MiB).
    public static let defaultMaxFrameSize: UInt32 = 4 * 1024 * 1024
    /// The smallest frame limit a peer may announce (1 KiB): smaller values are
    /// raised to it, so an error frame always fits.
    public static let minimumMaxFrameSize: UInt32 = 1024
}

public struct Hello: Hashable, Sendable {
    public var minVersion: UInt32
    public var maxVersion: UInt32
    public var clientName: String
    /// Largest frame the client accepts; 0 = the protocol default.
    public var maxFrameSize: UInt32

    public init(
        minVersion: UInt32 = ProtocolVersion.minimum,
        maxVersion: UInt32 = ProtocolVersion.current,
        clientName: String,
        maxFrameSize: UInt32 = 0
    ) {
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.clientName = clientName
        self.maxFrameSize = maxFrameSize
    }
}

public struct Welcome: Hashable, Sendable {
    public var version: UInt32
    public var serverName: String
    public var serverVersion: String
    public var maxFrameSize: UInt32
    public var maxConcurrentCalls: UInt32
    public var connectionID: UInt64
    public var maxQueuedPrompts: UInt32
    /// The limits the server enforces (0 = none), announced so clients can plan.
    public var limits: ConnectionLimits
    /// The peer as the kernel reported it, and what the policy lets it do.
    public var peer: PeerGrant

    public init(
        version: UInt32,
        serverName: String,
        serverVersion: String,
        maxFrameSize: UInt32,
        maxConcurrentCalls: UInt32,
        connectionID: UInt64,
        maxQueuedPrompts: UInt32,
        limits: ConnectionLimits = ConnectionLimits(),
        peer: PeerGrant = PeerGrant()
    ) {
        self.limits = limits
        self.peer = peer
        self.version = version
        self.serverName = serverName
        self.serverVersion = serverVersion
        self.maxFrameSize = maxFrameSize
        self.maxConcurrentCalls = maxConcurrentCalls
        self.connectionID = connectionID
        self.maxQueuedPrompts = maxQueuedPrompts
    }
}

/// The server-wide limits a `Welcome` announces; 0 means "no limit".
public struct ConnectionLimits: Hashable, Sendable {
    public var maxConnections: UInt32
    public var maxConnectionsPerUID: UInt32
    public var maxSessionsPerUID: UInt32
    public var handshakeTimeoutMs: UInt64
    /// A connection with no open call and no frame for this long is closed.
    public var idleConnectionTimeoutMs: UInt64
    /// Output buffered for one slow reader before the producer is paused.
    public var maxBufferedOutputBytes: UInt64

    public init(
        maxConnections: UInt32 = 0,
        maxConnectionsPerUID: UInt32 = 0,
        maxSessionsPerUID: UInt32 = 0,
        handshakeTimeoutMs: UInt64 = 0,
        idleConnectionTimeoutMs: UInt64 = 0,
        maxBufferedOutputBytes: UInt64 = 0
    ) {
        self.maxConnections = maxConnections
        self.maxConnectionsPerUID = maxConnectionsPerUID
        self.maxSessionsPerUID = maxSessionsPerUID
        self.handshakeTimeoutMs = handshakeTimeoutMs
        self.idleConnectionTimeoutMs = idleConnectionTimeoutMs
        self.maxBufferedOutputBytes = maxBufferedOutputBytes
    }
}

/// What the server's policy grants the connected peer (see docs/SECURITY.md).
public struct PeerGrant: Hashable, Sendable {
    /// The peer's uid as SO_PEERCRED reported it.
    public var uid: UInt32
    /// Administrators see and manage every session.
    public var isAdmin: Bool
    public var mayRegisterWorkers: Bool

    public init(uid: UInt32 = 0, isAdmin: Bool = false, mayRegisterWorkers: Bool = false) {
        self.uid = uid
        self.isAdmin = isAdmin
        self.mayRegisterWorkers = mayRegisterWorkers
    }
}

/// Key/value metadata sent with a call start or a call end.
public struct MetadataEntry: Hashable, Sendable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

public struct CallStart: Hashable, Sendable {
    /// `/switchboard.v1.Service/Method`, see ``MethodName``.
    public var method: String
    public var metadata: [MetadataEntry]
    /// Relative deadline in milliseconds; 0 = none.
    public var timeoutMs: UInt64
    /// The first request message (a unary call sends its only one here).
    public var payload: Payload?
    public var halfClose: Bool

    public init(
        method: String,
        metadata: [MetadataEntry] = [],
        timeoutMs: UInt64 = 0,
        payload: Payload? = nil,
        halfClose: Bool = false
    ) {
        self.method = method
        self.metadata = metadata
        self.timeoutMs = timeoutMs
        self.payload = payload
        self.halfClose = halfClose
    }
}

public struct CallMessage: Hashable, Sendable {
    public var payload: Payload?
    public var halfClose: Bool
    public init(payload: Payload?, halfClose: Bool = false) {
        self.payload = payload
        self.halfClose = halfClose
    }
}

public struct CallEnd: Hashable, Sendable {
    public var code: StatusCode
    public var message: String
    /// The final response message (a unary answer carries its only one here).
    public var payload: Payload?
    public var trailers: [MetadataEntry]

    public init(code: StatusCode, message: String = "", payload: Payload? = nil, trailers: [MetadataEntry] = []) {
        self.code = code
        self.message = message
        self.payload = payload
        self.trailers = trailers
    }
}

public struct GoAway: Hashable, Sendable {
    /// Calls up to this id still run to their end; later ones were not processed.
    public var lastCallID: UInt64
    /// `.ok` for a drain; otherwise why the connection is being closed.
    public var code: StatusCode
    public var message: String

    public init(lastCallID: UInt64, code: StatusCode, message: String) {
        self.lastCallID = lastCallID
        self.code = code
        self.message = message
    }
}
