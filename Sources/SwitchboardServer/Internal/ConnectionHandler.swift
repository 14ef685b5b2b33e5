import Logging
import NIOCore
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardTransport

/// One client connection: handshake, call multiplexing, limits and drain.
///
/// Everything here runs on the connection's event loop, and every method except
/// a prompt is answered inside `channelRead` (the registry calls are synchronous
/// and short), with one flush per read cycle: a unary round trip costs no thread
/// hop. Prompts run on their own task and come back through their
/// ``StreamingCallWriter``.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = ByteBuffer

    let connectionID: UInt64
    private let server: ServerContext
    private let peer: PeerCredentials
    /// What the access policy lets the peer do (announced in `Welcome`).
    private let grant: PeerGrant
    /// The peer as the registry's ownership checks see it.
    private let caller: Caller
    private let logger: Logger
    private let unary: UnaryResponder

    private var connection = ConnectionStateMachine()
    private var calls = CallTable()
    private var context: ChannelHandlerContext?
    private var handshakeTimer: Scheduled<Void>?
    /// The drain refused this connection before its channel was active: the
    /// GoAway is written as soon as it is (see ``beginGoingAway()``).
    private var refuseWhenActive = false
    /// Counted in ``ServerContext/activeConnectionCount`` (until inactive).
    private var countedActive = false
    /// The `timeout_ms` of calls the connection itself answers or holds: unary
    /// calls (waiting for their request, or answered from a task) and prompts or
    /// attaches still waiting for their request. A running prompt or attach
    /// enforces its own deadline.
    private var callDeadlines: [UInt64: Scheduled<Void>] = [:]
    /// Checks for an idle connection (``ServerConfiguration/idleConnectionTimeout``).
    private var idleTimer: Scheduled<Void>?
    /// When the last frame arrived, the handshake finished or the last open call
    /// ended: where the idle clock starts.
    private var lastFrameAt = NIODeadline.now()
    /// Frames answered during the current read cycle, written as one buffer.
    private var outbound: ByteBuffer?
    private var needsFlush = false
    /// Largest frame the client accepts (from its Hello): a response that would
    /// exceed it is replaced by an error instead of breaking the client's stream.
    private var peerMaxFrameSize = Int(ProtocolVersion.defaultMaxFrameSize)
    /// Worker calls whose output backlog is over the limit: while any, the
    /// connection is not read (autoRead off). See ``setReadsPaused(_:by:)``.
    private var readPausers: Set<UInt64> = []

    init(server: ServerContext, connectionID: UInt64, peer: PeerCredentials, grant: PeerGrant) {
        self.server = server
        self.connectionID = connectionID
        self.peer = peer
        self.grant = grant
        self.caller = Caller(uid: peer.uid, isAdmin: grant.isAdmin)
        self.unary = UnaryResponder(server: server, peer: peer, caller: caller)
        var logger = server.logger
        logger[metadataKey: "connection"] = "\(connectionID)"
        logger[metadataKey: "peer_pid"] = "\(peer.pid)"
        logger[metadataKey: "peer_uid"] = "\(peer.uid)"
        self.logger = logger
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let timeout = server.configuration.handshakeTimeout
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [self] in
            handshakeTimedOut(after: timeout)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        idleTimer?.cancel()
        cancelCallDeadlines()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        logger.debug("connection accepted")
        countedActive = true
        server.activeConnectionCount.wrappingAdd(1, ordering: .relaxed)
        context.fireChannelActive()
        if refuseWhenActive {
            refuseWhenActive = false
            refuseForDrain(context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if countedActive {
            countedActive = false
            server.activeConnectionCount.wrappingSubtract(1, ordering: .relaxed)
        }
        handshakeTimer?.cancel()
        idleTimer?.cancel()
        cancelCallDeadlines()
        _ = connection.close()
        outbound = nil
        let open = calls.removeAll()
        // A vanished client's turns run on, detached (their output is recorded
        // for Attach); only those that asked for it are cancelled.
        for call in open {
            if case .prompt(let prompt) = call {
                prompt.connectionClosed()
            }
            if case .attach(let attach) = call {
                attach.connectionClosed()
            }
            if case .worker(let worker) = call {
                worker.connectionClosed()
            }
        }
        logger.debug("connection closed", metadata: ["open_calls": "\(open.count)"])
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        lastFrameAt = .now()
        switch connection.classify(frame) {
        case .handshake(let hello):
            if let invalid = frame.invalidString {
                protocolError(.invalidArgument, invalid.message)
                return
            }
            handleHello(hello)
        case .ping(let nonce):
            write(Frame(kind: .pong(nonce: nonce)))
        case .call:
            handleCallFrame(frame)
        case .ignore:
            break
        case .protocolError(let code, let message):
            protocolError(code, message)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for writer in calls.streamingWriters { drainWriter(writer) }
        } else {
            for writer in calls.streamingWriters { writer.channelBecameUnwritable() }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? SwitchboardError {
            // From the frame decoder: an oversized or malformed frame. The stream
            // cannot be resynchronised, so this connection ends (and only it).
            protocolError(error.code, error.message)
        } else {
            logger.debug("connection error: \(error)")
            _ = connection.close()
            context.close(promise: nil)
        }
    }

    // MARK: Handshake

    private func handleHello(_ hello: Hello) {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        switch connection.receiveHello(hello) {
        case .welcome:
            if hello.maxFrameSize != 0 {
                peerMaxFrameSize = Int(max(hello.maxFrameSize, ProtocolVersion.minimumMaxFrameSize))
            }
            let configuration = server.configuration
            write(Frame(kind: .welcome(Welcome(
                version: ProtocolVersion.current,
                serverName: configuration.serverName,
                serverVersion: SwitchboardVersion.string,
                maxFrameSize: configuration.maxFrameSize,
                maxConcurrentCalls: UInt32(clamping: configuration.maxConcurrentCallsPerConnection),
                connectionID: connectionID,
                maxQueuedPrompts: server.defaultMaxQueuedPrompts,
                limits: ConnectionLimits(
                    maxConnections: UInt32(clamping: configuration.maxConnections),
                    maxConnectionsPerUID: UInt32(clamping: configuration.maxConnectionsPerUID),
                    maxSessionsPerUID: UInt32(clamping: server.registry.configuration.maxSessionsPerUID),
                    handshakeTimeoutMs: UInt64(clamping: configuration.handshakeTimeout.milliseconds),
                    idleConnectionTimeoutMs: UInt64(clamping: configuration.idleConnectionTimeout.milliseconds),
                    maxBufferedOutputBytes: UInt64(clamping: configuration.maxBufferedOutputBytesPerCall)
                ),
                peer: grant
            ))))
            logger.debug("handshake done", metadata: ["client": "\(hello.clientName)"])
            scheduleIdleCheck(in: configuration.idleConnectionTimeout)
        case .reject(let code, let message):
            protocolError(code, message)
        }
    }

    private func handshakeTimedOut(after timeout: Duration) {
        guard connection.state == .awaitingHello else { return }
        protocolError(.deadlineExceeded, "no Hello within \(timeout.milliseconds) ms")
    }

    // MARK: Idle connections

    /// One timer per connection, re-armed from the last frame: a connection is
    /// idle when it has no open call and has sent nothing for the whole timeout
    /// since its last frame or the end of its last call, whichever is later.
    /// A connection with an open call (a long prompt, a worker) is never idle.
    private func scheduleIdleCheck(in delay: Duration) {
        guard delay > .zero, let context else { return }
        idleTimer?.cancel()
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) { [self] in
            idleCheck()
        }
    }

    private func idleCheck() {
        idleTimer = nil
        let timeout = server.configuration.idleConnectionTimeout
        guard context != nil, connection.state == .active else { return }
        let quietFor = NIODeadline.now() - lastFrameAt
        guard calls.isEmpty, quietFor >= TimeAmount(timeout) else {
            let untilIdle = calls.isEmpty ? TimeAmount(timeout) - quietFor : TimeAmount(timeout)
            scheduleIdleCheck(in: .nanoseconds(max(untilIdle.nanoseconds, 1_000_000)))
            return
        }
        guard let context, connection.close() else { return }
        logger.info("closing an idle connection", metadata: ["idle_ms": "\(timeout.milliseconds)"])
        write(Frame(kind: .goAway(GoAway(
            lastCallID: calls.highestCallID,
            code: .ok,
            message: "idle connection closed: no call and no frame for \(timeout.milliseconds) ms"
        ))))
        closeAfterFlush(context)
    }

    // MARK: Calls

    private func handleCallFrame(_ frame: Frame) {
        let id = frame.callID
        if case .start(let start) = frame.kind {
            handleStart(id, start, invalidString: frame.invalidString)
            return
        }
        let call: CallTable.Call
        switch calls.lookup(id) {
        case .open(let open):
            call = open
        case .ended:
            // The call ended while the client was still sending for it.
            return
        case .neverStarted:
            protocolError(.invalidArgument, "\(frame.kind.fieldName) frame for call \(id), which was never started")
            return
        }
        if let invalid = frame.invalidString {
            refuse(id, call, invalid)
            return
        }
        switch frame.kind {
        case .message(let message):
            handleMessage(id, call, payload: message.payload, halfClose: message.halfClose)
        case .halfClose:
            handleMessage(id, call, payload: nil, halfClose: true)
        case .cancel:
            handleCancel(id, call)
        case .hello, .welcome, .start, .end, .ping, .pong, .goAway:
            preconditionFailure("classified as a call frame: \(frame.kind.fieldName)")
        }
    }

    /// `invalidString`: the start frame holds a string the protocol refuses (NUL
    /// byte, invalid UTF-8); the call ends with INVALID_ARGUMENT naming the field
    /// before any of its values is used.
    private func handleStart(_ id: UInt64, _ start: CallStart, invalidString: InvalidStringField?) {
        let previous = calls.highestCallID
        guard calls.claim(id) else {
            protocolError(.invalidArgument, "call id \(id) is not greater than the previous call id \(previous)")
            return
        }
        if let invalidString {
            endCall(id, CallEnd(code: .invalidArgument, message: invalidString.message))
            return
        }
        guard connection.acceptsNewCalls else {
            endCall(id, CallEnd(code: .unavailable, message: "server is shutting down; the call was not processed"))
            return
        }
        let limit = server.configuration.maxConcurrentCallsPerConnection
        guard calls.count < limit else {
            endCall(id, CallEnd(
                code: .resourceExhausted,
                message: "too many concurrent calls on this connection (limit \(limit))"
            ))
            return
        }
        guard let method = CallMethod(path: start.method) else {
            endCall(id, CallEnd(code: .unimplemented, message: "unknown method \(start.method)"))
            return
        }
        defer { armCallDeadline(id, timeoutMs: start.timeoutMs) }
        switch method {
        case .unary(let method):
            // Answered as soon as the request has arrived, half-closed or not.
            if start.payload != nil || start.halfClose {
                respondUnary(id, method, request: start.payload)
            } else {
                calls[id] = .unary(method)
            }
        case .prompt:
            let deadline = Self.deadline(timeoutMs: start.timeoutMs)
            if let payload = start.payload {
                startPrompt(id, payload, deadline: deadline)
            } else if start.halfClose {
                endCall(id, payloadMismatch(method: MethodName.prompt, expected: method.requestCase, got: nil))
            } else {
                calls[id] = .awaitingPrompt(deadline: deadline)
            }
        case .attach:
            let deadline = Self.deadline(timeoutMs: start.timeoutMs)
            if let payload = start.payload {
                startAttach(id, payload, deadline: deadline)
            } else if start.halfClose {
                endCall(id, payloadMismatch(method: MethodName.attach, expected: method.requestCase, got: nil))
            } else {
                calls[id] = .awaitingAttach(deadline: deadline)
            }
        case .workerConnect:
            guard let context else { return }
            guard grant.mayRegisterWorkers else {
                endCall(id, CallEnd(
                    code: .permissionDenied,
                    message: "uid \(peer.uid) may not register workers on this server (see its access policy)"
                ))
                return
            }
            let worker = WorkerCall(
                callID: id,
                server: server,
                eventLoop: context.eventLoop,
                handler: NIOLoopBound(self, eventLoop: context.eventLoop),
                logger: logger
            )
            calls[id] = .worker(worker)
            if start.payload != nil || start.halfClose {
                worker.receive(start.payload, halfClose: start.halfClose)
            }
        }
    }

    private func handleMessage(_ id: UInt64, _ call: CallTable.Call, payload: Payload?, halfClose: Bool) {
        switch call {
        case .unary(let method):
            // The request (or a half-close without one, refused as a missing
            // request) completes the call.
            if payload != nil || halfClose {
                respondUnary(id, method, request: payload)
            }
        case .awaitingPrompt(let deadline):
            if let payload {
                calls.remove(id)
                disarmCallDeadline(id)
                startPrompt(id, payload, deadline: deadline)
            } else if halfClose {
                endCall(id, payloadMismatch(method: MethodName.prompt, expected: "prompt_request", got: nil))
            }
        case .prompt(let prompt):
            // A half-close changes nothing: the prompt already has its request.
            if payload != nil {
                prompt.cancel(
                    reason: "protocol error: a second request message on the prompt call",
                    callStatus: .invalidArgument,
                    message: "\(MethodName.prompt) takes exactly one request message"
                )
            }
        case .worker(let worker):
            worker.receive(payload, halfClose: halfClose)
        case .awaitingAttach(let deadline):
            if let payload {
                calls.remove(id)
                disarmCallDeadline(id)
                startAttach(id, payload, deadline: deadline)
            } else if halfClose {
                endCall(id, payloadMismatch(method: MethodName.attach, expected: "attach_request", got: nil))
            }
        case .attach(let attach):
            if payload != nil {
                attach.cancel(code: .invalidArgument, message: "\(MethodName.attach) takes exactly one request message")
            }
        case .asyncUnary:
            // The call has its request and is being answered: whatever follows is
            // ignored, as it is once the answer is out (a synchronous method's
            // call has ended by the time the next frame is read).
            break
        }
    }

    /// A message or cancel frame of an open call holds a string the protocol refuses
    /// (NUL byte, invalid UTF-8): the call ends with INVALID_ARGUMENT naming the
    /// field, as for any other malformed request; a running prompt's turn is
    /// cancelled, a worker's call ends (its turns end UNAVAILABLE). The connection
    /// and its other calls go on.
    private func refuse(_ id: UInt64, _ call: CallTable.Call, _ invalid: InvalidStringField) {
        switch call {
        case .unary, .awaitingPrompt, .awaitingAttach, .asyncUnary:
            endCall(id, CallEnd(code: .invalidArgument, message: invalid.message))
        case .prompt(let prompt):
            prompt.cancel(reason: "protocol error: \(invalid.message)", callStatus: .invalidArgument, message: invalid.message)
        case .attach(let attach):
            attach.cancel(code: .invalidArgument, message: invalid.message)
        case .worker(let worker):
            worker.end(.invalidArgument, invalid.message, reason: "protocol error: \(invalid.message)")
        }
    }

    private func handleCancel(_ id: UInt64, _ call: CallTable.Call) {
        switch call {
        case .unary, .awaitingPrompt, .awaitingAttach, .asyncUnary:
            // An asynchronous answer that arrives later finds no call and is dropped
            // (a create or close still takes effect: it was already under way).
            endCall(id, CallEnd(code: .cancelled, message: "cancelled by client"))
        case .prompt(let prompt):
            // The turn ends CANCELLED and its task writes the call's end.
            prompt.turn.cancel(reason: "cancelled by client")
        case .attach(let attach):
            // Only the attach ends; the turn it follows runs on.
            attach.cancel(code: .cancelled, message: "cancelled by client")
        case .worker(let worker):
            worker.cancelled(reason: "cancelled by client")
        }
    }

    private func startPrompt(_ id: UInt64, _ payload: Payload, deadline: ContinuousClock.Instant?) {
        guard case .promptRequest(let request) = payload else {
            endCall(id, payloadMismatch(method: MethodName.prompt, expected: "prompt_request", got: payload))
            return
        }
        guard let context else { return }
        let turn: PendingTurn
        do throws(SwitchboardError) {
            turn = try server.registry.submitPrompt(request, deadline: deadline, caller: caller)
        } catch {
            endCall(id, CallEnd(code: error.code, message: error.message))
            return
        }
        let accepted = TurnAccepted(turnID: turn.turnID, queuePosition: UInt32(clamping: turn.queuePosition))
        write(Frame(callID: id, kind: .message(CallMessage(payload: .promptEvent(.accepted(accepted))))))

        let writer = StreamingCallWriter(
            callID: id,
            limit: server.configuration.maxBufferedOutputBytesPerCall,
            peerMaxFrameSize: peerMaxFrameSize,
            writable: context.channel.isWritable,
            eventLoop: context.eventLoop,
            handler: NIOLoopBound(self, eventLoop: context.eventLoop),
            server: server
        )
        let call = PromptCall(callID: id, turn: turn, writer: writer, cancelOnDisconnect: request.cancelOnDisconnect)
        calls[id] = .prompt(call)
        let server = self.server
        server.promptTaskStarted()
        Task {
            await call.run()
            server.promptTaskEnded()
        }
    }

    /// Answers a unary call: at once on the event loop, or, for a method that
    /// waits for the store, from a task whose answer comes back to this loop.
    private func respondUnary(_ id: UInt64, _ method: UnaryMethod, request: Payload?) {
        guard method.isAsync else {
            endCall(id, unary.respond(to: method, request: request, peerMaxFrameSize: peerMaxFrameSize))
            return
        }
        guard let context else { return }
        calls[id] = .asyncUnary(method)
        let unary = self.unary
        let server = self.server
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let peerMaxFrameSize = self.peerMaxFrameSize
        server.promptTaskStarted()
        Task {
            let end = await unary.respondAsync(to: method, request: request, peerMaxFrameSize: peerMaxFrameSize)
            eventLoop.execute {
                handler.value.finishAsyncUnary(id, end)
            }
            server.promptTaskEnded()
        }
    }

    /// The answer of an asynchronous unary call, on the event loop; dropped when
    /// the call was cancelled or the connection closed meanwhile.
    private func finishAsyncUnary(_ id: UInt64, _ end: CallEnd) {
        guard case .asyncUnary? = calls[id], connection.isOpen else { return }
        endCall(id, end)
        flushIfNeeded()
    }

    private func startAttach(_ id: UInt64, _ payload: Payload, deadline: ContinuousClock.Instant?) {
        guard case .attachRequest(let request) = payload else {
            endCall(id, payloadMismatch(method: MethodName.attach, expected: "attach_request", got: payload))
            return
        }
        guard let context else { return }
        let attachment: TurnAttachment
        do throws(SwitchboardError) {
            attachment = try server.registry.attach(request, caller: caller)
        } catch {
            endCall(id, CallEnd(code: error.code, message: error.message))
            return
        }
        let writer = StreamingCallWriter(
            callID: id,
            limit: server.configuration.maxBufferedOutputBytesPerCall,
            peerMaxFrameSize: peerMaxFrameSize,
            writable: context.channel.isWritable,
            eventLoop: context.eventLoop,
            handler: NIOLoopBound(self, eventLoop: context.eventLoop),
            server: server
        )
        let call = AttachCall(callID: id, attachment: attachment, writer: writer, deadline: deadline)
        calls[id] = .attach(call)
        let server = self.server
        server.promptTaskStarted()
        call.start { server.promptTaskEnded() }
    }

    /// Writes the call's end and forgets the call.
    private func endCall(_ id: UInt64, _ end: CallEnd) {
        // Every refusal is logged (docs/SECURITY.md); the logger carries the peer's
        // uid and pid.
        switch end.code {
        case .permissionDenied:
            logger.notice("call refused: permission denied", metadata: ["call": "\(id)", "error": "\(end.message)"])
        case .resourceExhausted:
            logger.notice("call refused: resource exhausted", metadata: ["call": "\(id)", "error": "\(end.message)"])
        default:
            break
        }
        calls.remove(id)
        disarmCallDeadline(id)
        writeCallEnd(id, end)
        callRemoved()
    }

    // MARK: Deadlines of calls the connection answers

    /// Arms `timeout_ms` for a call this handler answers or holds (see
    /// ``callDeadlines``): when it passes first, the call ends DEADLINE_EXCEEDED.
    /// A unary method's effect (a created or closed session) may still happen,
    /// as after a cancel.
    private func armCallDeadline(_ id: UInt64, timeoutMs: UInt64) {
        guard timeoutMs > 0, let context, let call = calls[id] else { return }
        switch call {
        case .unary, .asyncUnary, .awaitingPrompt, .awaitingAttach:
            break
        case .prompt, .attach, .worker:
            return
        }
        let capped = min(timeoutMs, Self.maximumTimeoutMs)
        callDeadlines[id] = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(capped))) { [self] in
            callDeadlinePassed(id, timeoutMs: timeoutMs)
        }
    }

    private func disarmCallDeadline(_ id: UInt64) {
        callDeadlines.removeValue(forKey: id)?.cancel()
    }

    private func cancelCallDeadlines() {
        for timer in callDeadlines.values { timer.cancel() }
        callDeadlines.removeAll()
    }

    private func callDeadlinePassed(_ id: UInt64, timeoutMs: UInt64) {
        callDeadlines[id] = nil
        guard connection.isOpen, let call = calls[id] else { return }
        switch call {
        case .asyncUnary:
            endCall(id, CallEnd(code: .deadlineExceeded, message: "deadline of \(timeoutMs) ms exceeded"))
        case .unary, .awaitingPrompt, .awaitingAttach:
            endCall(id, CallEnd(
                code: .deadlineExceeded,
                message: "deadline of \(timeoutMs) ms exceeded before the request arrived"
            ))
        case .prompt, .attach, .worker:
            return
        }
        flushIfNeeded()
    }

    /// A response too big for the client (say, status with 100k sessions) is
    /// replaced by RESOURCE_EXHAUSTED rather than sent and rejected by the client
    /// as a protocol error that would end all its calls.
    private func writeCallEnd(_ id: UInt64, _ end: CallEnd) {
        guard context != nil else { return }
        if outbound == nil {
            outbound = context?.channel.allocator.buffer(capacity: 256)
        }
        let start = outbound!.writerIndex
        let size = outbound!.writeFrame(Frame(callID: id, kind: .end(end))) - FrameLength.prefixSize
        if size > peerMaxFrameSize {
            outbound!.moveWriterIndex(to: start)
            outbound!.writeFrame(Frame(callID: id, kind: .end(CallEnd(
                code: .resourceExhausted,
                message: "response of \(size) bytes exceeds the client's maximum frame size of \(peerMaxFrameSize) bytes"
            ))))
        }
    }

    /// A draining connection closes once its last call has ended. Otherwise the
    /// idle clock starts again when the last call ends: a client that waited nine
    /// minutes for an answer without sending a frame was not idle, and must get the
    /// whole idle timeout for its next call.
    private func callRemoved() {
        guard calls.isEmpty else { return }
        lastFrameAt = .now()
        guard connection.state == .goingAway, let context else { return }
        _ = connection.close()
        closeAfterFlush(context)
    }

    /// Writes what a prompt's writer has pending (scheduled by the writer, or
    /// when the channel becomes writable again), then flushes once.
    func drainWriter(_ writer: StreamingCallWriter) {
        guard let context, connection.isOpen else { return }
        let batch = writer.takeBatch(writable: context.channel.isWritable)
        guard !batch.buffers.isEmpty else { return }
        pushOutbound()
        for buffer in batch.buffers {
            context.write(Self.wrapOutboundOut(buffer), promise: nil)
        }
        needsFlush = true
        if batch.ended {
            calls.remove(writer.callID)
            callRemoved()
        }
        flushIfNeeded()
    }

    // MARK: Drain (called by the server on this event loop)

    /// Sends GoAway(OK): open calls run to their end, new ones get UNAVAILABLE,
    /// and the connection closes when the last call has ended.
    func beginGoingAway() {
        guard let context else { return }
        switch connection.beginGoingAway() {
        case .sendGoAway:
            write(Frame(kind: .goAway(GoAway(
                lastCallID: calls.highestCallID,
                code: .ok,
                message: "server is shutting down"
            ))))
            if calls.isEmpty {
                _ = connection.close()
                closeAfterFlush(context)
            } else {
                flushIfNeeded()
            }
        case .close:
            handshakeTimer?.cancel()
            // Admitted but not registered yet (the drain began between accept
            // and registration): nothing can be written before the channel is
            // active, so the refusal waits for it.
            guard context.channel.isActive else {
                refuseWhenActive = true
                return
            }
            refuseForDrain(context)
        case .none:
            break
        }
    }

    /// Before the Welcome a GoAway refuses the connection, and its code is what
    /// the client reports as the connect error: UNAVAILABLE, as for a connection
    /// accepted during the drain, never OK.
    private func refuseForDrain(_ context: ChannelHandlerContext) {
        write(Frame(kind: .goAway(GoAway(lastCallID: 0, code: .unavailable, message: "server is shutting down"))))
        closeAfterFlush(context)
    }

    /// The grace period is over: every open call ends now with UNAVAILABLE.
    func cancelCallsForShutdown() {
        for (id, call) in calls.openCalls {
            switch call {
            case .prompt(let prompt):
                prompt.cancel(reason: "server shutting down", callStatus: .unavailable, message: "server shutting down")
            case .unary, .awaitingPrompt, .awaitingAttach, .asyncUnary:
                endCall(id, CallEnd(code: .unavailable, message: "server shutting down"))
            case .attach(let attach):
                attach.cancel(code: .unavailable, message: "server shutting down")
            case .worker(let worker):
                worker.end(.unavailable, "server shutting down")
            }
        }
        flushIfNeeded()
    }

    /// Writes one frame of a worker call (commands, or its end), on the event loop.
    /// Frames for a call that has already ended are dropped.
    func writeWorkerFrame(_ frame: Frame) {
        guard context != nil, connection.isOpen, case .worker? = calls[frame.callID] else { return }
        if case .end(let end) = frame.kind {
            endCall(frame.callID, end)
            setReadsPaused(false, by: frame.callID)
        } else {
            write(frame)
        }
        flushIfNeeded()
    }

    /// A worker dropped by the liveness check: its call ends with `frame`, and if
    /// no other call shares the connection, the connection ends too, with
    /// GoAway(UNAVAILABLE, "worker missed heartbeats"), so a hung worker does not
    /// keep its socket. Other calls on the connection are left alone.
    func endWorkerCallClosingConnection(_ frame: Frame) {
        writeWorkerFrame(frame)
        guard let context, calls.isEmpty, connection.close() else { return }
        handshakeTimer?.cancel()
        logger.notice("closing a worker connection: worker missed heartbeats")
        write(Frame(kind: .goAway(GoAway(
            lastCallID: calls.highestCallID,
            code: .unavailable,
            message: "worker missed heartbeats"
        ))))
        closeAfterFlush(context)
    }

    /// Worker backpressure: while any worker call on this connection has a turn
    /// whose output backlog is over the limit, the connection is not read at all
    /// (autoRead off), so the server never buffers a worker's output without
    /// bound. Every call on the connection pauses with it; worker calls are told,
    /// so that the silence does not count against the worker's heartbeats.
    func setReadsPaused(_ paused: Bool, by callID: UInt64) {
        guard let context else { return }
        let wasPaused = !readPausers.isEmpty
        if paused, case .worker? = calls[callID], connection.isOpen {
            readPausers.insert(callID)
        } else {
            readPausers.remove(callID)
        }
        let isPaused = !readPausers.isEmpty
        guard wasPaused != isPaused else { return }
        logger.debug(isPaused ? "worker output backlog full, pausing reads" : "worker output backlog drained, resuming reads")
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: !isPaused)
        for call in calls.workerCalls { call.readsPausedChanged(isPaused) }
    }

    // MARK: Output

    private func write(_ frame: Frame) {
        guard context != nil else { return }
        if outbound == nil {
            outbound = context?.channel.allocator.buffer(capacity: 256)
        }
        outbound!.writeFrame(frame)
    }

    /// Hands the frames collected so far to the channel (not flushed yet).
    private func pushOutbound() {
        guard let context, let buffer = outbound else { return }
        outbound = nil
        context.write(Self.wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    private func flushIfNeeded() {
        pushOutbound()
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    /// Ends the connection with GoAway(code, message): malformed input, limits,
    /// handshake failures. Nothing outside this connection is affected.
    private func protocolError(_ code: StatusCode, _ message: String) {
        guard let context, connection.close() else { return }
        handshakeTimer?.cancel()
        logger.notice(
            "protocol error, closing the connection",
            metadata: ["code": "\(code.name)", "error": "\(message)"]
        )
        write(Frame(kind: .goAway(GoAway(lastCallID: calls.highestCallID, code: code, message: message))))
        closeAfterFlush(context)
    }

    /// Closes once everything written so far has reached the socket, so that the
    /// last frame (GoAway, CallEnd) is delivered; a peer that does not read gets
    /// closed anyway after a short while.
    private func closeAfterFlush(_ context: ChannelHandlerContext) {
        pushOutbound()
        needsFlush = false
        let channel = context.channel
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(Self.wrapOutboundOut(channel.allocator.buffer(capacity: 0)), promise: written)
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        context.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
    }

    /// Timeouts are capped at a year so the arithmetic cannot overflow.
    private static let maximumTimeoutMs: UInt64 = 365 * 24 * 3600 * 1000

    private static func deadline(timeoutMs: UInt64) -> ContinuousClock.Instant? {
        guard timeoutMs > 0 else { return nil }
        let capped = min(timeoutMs, maximumTimeoutMs)
        return .now + .milliseconds(Int64(capped))
    }
}

/// Installed instead of ``ConnectionHandler`` on a connection the server will
/// not serve (limit reached, draining): says why with a GoAway, then closes.
final class RejectConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let goAway: GoAway

    init(goAway: GoAway) {
        self.goAway = goAway
    }

    func channelActive(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        buffer.writeFrame(Frame(kind: .goAway(goAway)))
        let channel = context.channel
        context.writeAndFlush(Self.wrapOutboundOut(buffer)).whenComplete { _ in
            channel.close(promise: nil)
        }
        context.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Whatever the client sends is dropped: the connection is being closed.
    }
}
