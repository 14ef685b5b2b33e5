import CProtobufC
import CSwitchboardProto

// Conversion of the envelope messages (Frame and the messages of its `kind` oneof)
// to protobuf-c structs built in a CArena, and from unpacked protobuf-c structs.

typealias CFrame = Switchboard__V1__Frame
typealias CHello = Switchboard__V1__Hello
typealias CWelcome = Switchboard__V1__Welcome
typealias CMetadataEntry = Switchboard__V1__MetadataEntry
typealias CCallStart = Switchboard__V1__CallStart
typealias CCallMessage = Switchboard__V1__CallMessage
typealias CHalfClose = Switchboard__V1__HalfClose
typealias CCancel = Switchboard__V1__Cancel
typealias CCallEnd = Switchboard__V1__CallEnd
typealias CPing = Switchboard__V1__Ping
typealias CPong = Switchboard__V1__Pong
typealias CGoAway = Switchboard__V1__GoAway

extension Frame {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CFrame> {
        let frame = arena.message(switchboard__v1__frame__init)
        frame.pointee.call_id = callID
        switch kind {
        case .hello(let hello):
            frame.pointee.kind_case = SWITCHBOARD__V1__FRAME__KIND_HELLO
            frame.pointee.hello = hello.cMessage(in: &arena)
        case .welcome(let welcome):
            frame.pointee.kind_case = SWITCHBOARD__V1__FRAME__KIND_WELCOME
            frame.pointee.welcome = welcome.cMessage(in: &arena)
        case .start(let start):
            frame.pointee.kind_case = SWITCHBOARD__V1__FRAME__KIND_START
            frame.pointee.start = start.cMessage(in: &arena)
        case .message(let message):
            frame.pointee.kind_case = SWITCHBOARD__V1__FRAME__KIND_MESSAGE
            frame.pointee.message = message.cMessage(in: &arena)
        case .halfClose:
            frame.pointee.kind_case = SWITCHBOARD__V1__FRAME__KIND_HALF_CLOSE
            frame.pointee.half_close = arena.message(switchboard__v1__half_close__init)
        case .cancel(let reason):
            let cancel = arena.message(switchboard__v1__cancel__init)
            cancel.pointee.reason = arena.string(reason)
            frame.pointee.kind_case = SWITCHBOARD__V1__FRAME__KIND_CANCEL
            frame.pointee.cancel = cancel
        case .end(let end):
            frame.pointee.kind_case = SWITCHBOARD__V1__FRAME__KIND_END
            frame.pointee.end = end.cMessage(in: &arena)
        case .ping(let nonce):
            let ping = arena.message(switchboard__v1__ping__init)
            ping.pointee.nonce = nonce
            frame.pointee.kind_case = SWITCHBOARD__V1__FRAME__KIND_PING
            frame.pointee.ping = ping
        case .pong(let nonce):
            let pong = arena.message(switchboard__v1__pong__init)
            pong.pointee.nonce = nonce
            frame.pointee.kind_case = SWITCHBOARD__V1__FRAME__KIND_PONG
            frame.pointee.pong = pong
        case .goAway(let goAway):
            frame.pointee.kind_case = SWITCHBOARD__V1__FRAME__KIND_GO_AWAY
            frame.pointee.go_away = goAway.cMessage(in: &arena)
        }
        return frame
    }

    init(cMessage c: UnsafePointer<CFrame>) throws(SwitchboardError) {
        let kind: Kind
        switch c.pointee.kind_case {
        case SWITCHBOARD__V1__FRAME__KIND_HELLO:
            kind = .hello(Hello(cMessage: try required(c.pointee.hello, "hello")))
        case SWITCHBOARD__V1__FRAME__KIND_WELCOME:
            kind = .welcome(Welcome(cMessage: try required(c.pointee.welcome, "welcome")))
        case SWITCHBOARD__V1__FRAME__KIND_START:
            kind = .start(try CallStart(cMessage: try required(c.pointee.start, "start")))
        case SWITCHBOARD__V1__FRAME__KIND_MESSAGE:
            kind = .message(try CallMessage(cMessage: try required(c.pointee.message, "message")))
        case SWITCHBOARD__V1__FRAME__KIND_HALF_CLOSE:
            kind = .halfClose
        case SWITCHBOARD__V1__FRAME__KIND_CANCEL:
            kind = .cancel(reason: swiftString(c.pointee.cancel?.pointee.reason))
        case SWITCHBOARD__V1__FRAME__KIND_END:
            kind = .end(try CallEnd(cMessage: try required(c.pointee.end, "end")))
        case SWITCHBOARD__V1__FRAME__KIND_PING:
            kind = .ping(nonce: c.pointee.ping?.pointee.nonce ?? 0)
        case SWITCHBOARD__V1__FRAME__KIND_PONG:
            kind = .pong(nonce: c.pointee.pong?.pointee.nonce ?? 0)
        case SWITCHBOARD__V1__FRAME__KIND_GO_AWAY:
            kind = .goAway(GoAway(cMessage: try required(c.pointee.go_away, "go_away")))
        default:
            // Unset, or a kind added by a newer protocol version (kept as an unknown field).
            throw .malformedFrame("frame has no kind")
        }
        self.init(callID: c.pointee.call_id, kind: kind)
    }
}

/// The member of a set oneof. protobuf-c always allocates it when the case is set;
/// this guards against a NULL all the same instead of trapping.
@inline(__always)
func required<C>(_ pointer: UnsafeMutablePointer<C>?, _ field: String) throws(SwitchboardError) -> UnsafePointer<C> {
    guard let pointer else { throw .malformedFrame("\(field) is set but empty") }
    return UnsafePointer(pointer)
}

extension Hello {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CHello> {
        let c = arena.message(switchboard__v1__hello__init)
        c.pointee.min_version = minVersion
        c.pointee.max_version = maxVersion
        c.pointee.client_name = arena.string(clientName)
        c.pointee.max_frame_size = maxFrameSize
        return c
    }

    init(cMessage c: UnsafePointer<CHello>) {
        self.init(
            minVersion: c.pointee.min_version,
            maxVersion: c.pointee.max_version,
            clientName: swiftString(c.pointee.client_name),
            maxFrameSize: c.pointee.max_frame_size
        )
    }
}

extension Welcome {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CWelcome> {
        let c = arena.message(switchboard__v1__welcome__init)
        c.pointee.version = version
        c.pointee.server_name = arena.string(serverName)
        c.pointee.server_version = arena.string(serverVersion)
        c.pointee.max_frame_size = maxFrameSize
        c.pointee.max_concurrent_calls = maxConcurrentCalls
        c.pointee.connection_id = connectionID
        c.pointee.max_queued_prompts = maxQueuedPrompts
        c.pointee.max_connections = limits.maxConnections
        c.pointee.max_connections_per_uid = limits.maxConnectionsPerUID
        c.pointee.max_sessions_per_uid = limits.maxSessionsPerUID
        c.pointee.handshake_timeout_ms = limits.handshakeTimeoutMs
        c.pointee.idle_connection_timeout_ms = limits.idleConnectionTimeoutMs
        c.pointee.max_buffered_output_bytes = limits.maxBufferedOutputBytes
        c.pointee.peer_uid = peer.uid
        c.pointee.peer_is_admin = peer.isAdmin ? 1 : 0
        c.pointee.peer_may_register_workers = peer.mayRegisterWorkers ? 1 : 0
        return c
    }

    init(cMessage c: UnsafePointer<CWelcome>) {
        self.init(
            version: c.pointee.version,
            serverName: swiftString(c.pointee.server_name),
            serverVersion: swiftString(c.pointee.server_version),
            maxFrameSize: c.pointee.max_frame_size,
            maxConcurrentCalls: c.pointee.max_concurrent_calls,
            connectionID: c.pointee.connection_id,
            maxQueuedPrompts: c.pointee.max_queued_prompts,
            limits: ConnectionLimits(
                maxConnections: c.pointee.max_connections,
                maxConnectionsPerUID: c.pointee.max_connections_per_uid,
                maxSessionsPerUID: c.pointee.max_sessions_per_uid,
                handshakeTimeoutMs: c.pointee.handshake_timeout_ms,
                idleConnectionTimeoutMs: c.pointee.idle_connection_timeout_ms,
                maxBufferedOutputBytes: c.pointee.max_buffered_output_bytes
            ),
            peer: PeerGrant(
                uid: c.pointee.peer_uid,
                isAdmin: c.pointee.peer_is_admin != 0,
                mayRegisterWorkers: c.pointee.peer_may_register_workers != 0
            )
        )
    }
}

extension MetadataEntry {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CMetadataEntry> {
        let c = arena.message(switchboard__v1__metadata_entry__init)
        c.pointee.key = arena.string(key)
        c.pointee.value = arena.string(value)
        return c
    }

    init(cMessage c: UnsafePointer<CMetadataEntry>) {
        self.init(key: swiftString(c.pointee.key), value: swiftString(c.pointee.value))
    }
}

extension CallStart {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CCallStart> {
        let c = arena.message(switchboard__v1__call_start__init)
        c.pointee.method = arena.string(method)
        c.pointee.n_metadata = metadata.count
        c.pointee.metadata = arena.pointerArray(metadata) { entry, arena in entry.cMessage(in: &arena) }
        c.pointee.timeout_ms = timeoutMs
        c.pointee.payload = payload?.cMessage(in: &arena)
        c.pointee.half_close = halfClose ? 1 : 0
        return c
    }

    init(cMessage c: UnsafePointer<CCallStart>) throws(SwitchboardError) {
        self.init(
            method: swiftString(c.pointee.method),
            metadata: swiftArray(c.pointee.metadata, count: c.pointee.n_metadata, MetadataEntry.init(cMessage:)),
            timeoutMs: c.pointee.timeout_ms,
            payload: try Payload.decode(c.pointee.payload),
            halfClose: c.pointee.half_close != 0
        )
    }
}

extension CallMessage {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CCallMessage> {
        let c = arena.message(switchboard__v1__call_message__init)
        c.pointee.payload = payload?.cMessage(in: &arena)
        c.pointee.half_close = halfClose ? 1 : 0
        return c
    }

    /// A message without a payload decodes with `payload == nil`; the receiver decides.
    init(cMessage c: UnsafePointer<CCallMessage>) throws(SwitchboardError) {
        self.init(payload: try Payload.decode(c.pointee.payload), halfClose: c.pointee.half_close != 0)
    }
}

extension CallEnd {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CCallEnd> {
        let c = arena.message(switchboard__v1__call_end__init)
        c.pointee.code = code.rawValue
        c.pointee.message = arena.string(message)
        c.pointee.payload = payload?.cMessage(in: &arena)
        c.pointee.n_trailers = trailers.count
        c.pointee.trailers = arena.pointerArray(trailers) { entry, arena in entry.cMessage(in: &arena) }
        return c
    }

    init(cMessage c: UnsafePointer<CCallEnd>) throws(SwitchboardError) {
        self.init(
            code: StatusCode(rawValue: c.pointee.code),
            message: swiftString(c.pointee.message),
            payload: try Payload.decode(c.pointee.payload),
            trailers: swiftArray(c.pointee.trailers, count: c.pointee.n_trailers, MetadataEntry.init(cMessage:))
        )
    }
}

extension GoAway {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CGoAway> {
        let c = arena.message(switchboard__v1__go_away__init)
        c.pointee.last_call_id = lastCallID
        c.pointee.code = code.rawValue
        c.pointee.message = arena.string(message)
        return c
    }

    init(cMessage c: UnsafePointer<CGoAway>) {
        self.init(
            lastCallID: c.pointee.last_call_id,
            code: StatusCode(rawValue: c.pointee.code),
            message: swiftString(c.pointee.message)
        )
    }
}
