import NIOCore
import SwitchboardProtocol

/// What a successful handshake hands back to `SwitchboardClient.connect`.
struct Handshake: Sendable {
    let welcome: Welcome
    let handler: NIOLoopBound<ClientHandler>
}

/// The client end of one connection: handshake, call-id assignment, demultiplexing of
/// the server's frames to the waiting calls, and read backpressure for streams.
///
/// Why all state lives here, on the event loop, instead of behind a lock:
/// - call ids must go out strictly increasing, so the id is assigned where the
///   `CallStart` is written; a task that picks an id and then writes could be overtaken;
/// - the answer arrives on the loop, and the waiting continuation is resumed right
///   there (no extra hop), which is what keeps a unary round trip close to a raw
///   socket ping-pong;
/// - a caller reaches the loop with one `execute` per call, the hop a write from
///   outside the loop costs anyway.
///
/// Every method is called on the channel's event loop.
final class ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = Frame
    typealias OutboundIn = Frame
    typealias OutboundOut = Frame

    typealias UnaryContinuation = CheckedContinuation<Result<Payload?, SwitchboardError>, Never>
    typealias PingContinuation = CheckedContinuation<Result<Void, SwitchboardError>, Never>

    /// A call that may still run past its own deadline is failed locally this much later,
    /// so that normally the server's DEADLINE_EXCEEDED (which it records in the turn
    /// history) wins, and a server that cannot answer does not hang the caller.
    static let localDeadlineGrace: Duration = .milliseconds(500)

    private enum ConnectionState {
        case idle
        case handshaking
        case ready
        /// The server sent GoAway: no new calls; calls up to `lastCallID` run on.
        case goingAway(GoAway)
        case closed(SwitchboardError)
    }

    private struct OpenCall {
        let ticket: CallTicket
        /// Set for a unary call.
        var continuation: UnaryContinuation?
        /// A unary response that came as a CallMessage rather than in the CallEnd.
        var response: Payload?
        /// Set for a streaming call.
        var source: PromptEventProducer.Source?
        /// The stream's buffer is above its high watermark; reading is held for it.
        var paused = false
        /// Events read in the current read cycle, handed to the stream together in
        /// `channelReadComplete` (see `flushEventBatches`).
        var batch: [PromptEvent] = []
        var deadline: Scheduled<Void>?
    }

    private let hello: Hello
    private let socketPath: String
    private let handshakeTimeLimit: Duration
    private var handshakePromise: EventLoopPromise<Handshake>?
    private var handshakeTimer: Scheduled<Void>?

    private var state: ConnectionState = .idle
    private var context: ChannelHandlerContext?
    private var nextCallID: UInt64 = 1
    private var nextNonce: UInt64 = 1
    private var calls: [UInt64: OpenCall] = [:]
    private var pings: [UInt64: (continuation: PingContinuation, ticket: CallTicket)] = [:]

    /// Streams whose consumer is behind; while any is, the connection does not read.
    private var pausedStreams = 0
    /// Calls with events in their `batch`, in the order they got their first one.
    private var batchedCalls: [UInt64] = []
    /// A `read()` that was held back while streams were paused.
    private var readPending = false
    /// Why the connection is closing, when we know better than "the peer hung up".
    private var closeError: SwitchboardError?

    init(hello: Hello, socketPath: String, handshakeTimeLimit: Duration, handshakePromise: EventLoopPromise<Handshake>) {
        self.hello = hello
        self.socketPath = socketPath
        self.handshakeTimeLimit = handshakeTimeLimit
        self.handshakePromise = handshakePromise
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive {
            self.beginHandshake(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.failEverything(SwitchboardError(code: .unavailable, message: "connection closed"))
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.beginHandshake(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.failEverything(self.closeError ?? SwitchboardError(code: .unavailable, message: "connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A decoder error (oversized or malformed frame) or an I/O error: the byte stream
        // cannot be trusted any more. Every call fails with UNAVAILABLE, naming the cause.
        if self.closeError == nil {
            let reason = (error as? SwitchboardError)?.message ?? "\(error)"
            self.closeError = SwitchboardError(code: .unavailable, message: "connection closed: \(reason)", cause: error)
        }
        context.close(promise: nil)
    }

    /// Holds the channel's reads while a stream's consumer is behind (see `PromptStream`).
    func read(context: ChannelHandlerContext) {
        if self.pausedStreams > 0 {
            self.readPending = true
        } else {
            context.read()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.flushEventBatches()
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        if case .handshaking = self.state {
            self.handleHandshakeFrame(frame, context: context)
            return
        }
        switch frame.kind {
        case .end(let end):
            self.callEnded(frame.callID, end)
        case .message(let message):
            self.callMessage(frame.callID, message)
        case .goAway(let goAway):
            self.goAwayReceived(goAway)
        case .ping(let nonce):
            context.writeAndFlush(self.wrapOutboundOut(Frame(kind: .pong(nonce: nonce))), promise: nil)
        case .pong(let nonce):
            if let ping = self.pings.removeValue(forKey: nonce) {
                ping.ticket.markEnded()
                ping.continuation.resume(returning: .success(()))
            }
        case .welcome, .hello, .start, .halfClose, .cancel:
            // Not meaningful from a server after the handshake; ignoring them keeps a
            // confused server from taking the client down.
            break
        }
    }

    // MARK: - Handshake

    private func beginHandshake(context: ChannelHandlerContext) {
        guard case .idle = self.state else { return }
        self.state = .handshaking
        context.writeAndFlush(self.wrapOutboundOut(Frame(kind: .hello(self.hello))), promise: nil)
        let limit = self.handshakeTimeLimit
        let path = self.socketPath
        self.handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: limit.timeAmount) {
            self.failHandshake(
                SwitchboardError(code: .unavailable, message: "cannot connect to \(path): no Welcome from the server within \(limit)")
            )
        }
    }

    private func handleHandshakeFrame(_ frame: Frame, context: ChannelHandlerContext) {
        switch frame.kind {
        case .welcome(let welcome):
            guard (ProtocolVersion.minimum...ProtocolVersion.current).contains(welcome.version) else {
                self.failHandshake(
                    SwitchboardError(
                        code: .failedPrecondition,
                        message: "server chose protocol version \(welcome.version); this client speaks \(ProtocolVersion.minimum)...\(ProtocolVersion.current)"
                    )
                )
                return
            }
            self.state = .ready
            self.handshakeTimer?.cancel()
            self.handshakeTimer = nil
            let promise = self.handshakePromise
            self.handshakePromise = nil
            promise?.succeed(Handshake(welcome: welcome, handler: NIOLoopBound(self, eventLoop: context.eventLoop)))
        case .goAway(let goAway):
            // The server refused us (bad version, too many connections, draining): its
            // code and message are the answer. OK (a drain) is not an error code, so it
            // becomes UNAVAILABLE.
            let code = goAway.code == .ok ? StatusCode.unavailable : goAway.code
            let message = goAway.message.isEmpty ? "server refused the connection" : goAway.message
            self.failHandshake(SwitchboardError(code: code, message: message))
        default:
            self.failHandshake(
                SwitchboardError(code: .unavailable, message: "protocol error: expected Welcome from the server, got \(frame.kind)")
            )
        }
    }

    private func failHandshake(_ error: SwitchboardError) {
        self.handshakeTimer?.cancel()
        self.handshakeTimer = nil
        if self.closeError == nil { self.closeError = error }
        let promise = self.handshakePromise
        self.handshakePromise = nil
        promise?.fail(error)
        self.context?.close(promise: nil)
    }

    // MARK: - Starting calls (called via `eventLoop.execute` by the client)

    /// Checks that a new call may start and assigns its id, or says why not.
    private func admit(_ ticket: CallTicket) -> Result<(UInt64, ChannelHandlerContext), SwitchboardError> {
        if case .cancelledBeforeStart(let error) = ticket.state.value {
            return .failure(error)
        }
        guard let context = self.context else {
            return .failure(self.closeError ?? SwitchboardError(code: .unavailable, message: "connection closed"))
        }
        switch self.state {
        case .ready:
            break
        case .goingAway(let goAway):
            return .failure(Self.goingAwayError(goAway))
        case .closed(let error):
            return .failure(error)
        case .idle, .handshaking:
            return .failure(SwitchboardError(code: .unavailable, message: "not connected"))
        }
        let id = self.nextCallID
        self.nextCallID += 1
        ticket.state.value = .call(id)
        return .success((id, context))
    }

    func startUnary(_ start: CallStart, ticket: CallTicket, localDeadline: Duration?, continuation: UnaryContinuation) {
        switch self.admit(ticket) {
        case .failure(let error):
            ticket.markEnded()
            continuation.resume(returning: .failure(error))
        case .success(let (id, context)):
            var call = OpenCall(ticket: ticket, continuation: continuation)
            call.deadline = self.scheduleDeadline(localDeadline, callID: id, context: context)
            self.calls[id] = call
            context.writeAndFlush(self.wrapOutboundOut(Frame(callID: id, kind: .start(start))), promise: nil)
        }
    }

    func startStream(_ start: CallStart, ticket: CallTicket, localDeadline: Duration?, source: PromptEventProducer.Source) {
        switch self.admit(ticket) {
        case .failure(let error):
            ticket.markEnded()
            source.finish(error)
        case .success(let (id, context)):
            var call = OpenCall(ticket: ticket, source: source)
            call.deadline = self.scheduleDeadline(localDeadline, callID: id, context: context)
            self.calls[id] = call
            context.writeAndFlush(self.wrapOutboundOut(Frame(callID: id, kind: .start(start))), promise: nil)
        }
    }

    func startPing(ticket: CallTicket, continuation: PingContinuation) {
        if case .cancelledBeforeStart(let error) = ticket.state.value {
            ticket.markEnded()
            continuation.resume(returning: .failure(error))
            return
        }
        guard let context = self.context else {
            ticket.markEnded()
            continuation.resume(returning: .failure(self.closeError ?? SwitchboardError(code: .unavailable, message: "connection closed")))
            return
        }
        switch self.state {
        case .ready, .goingAway:
            // A ping is connection-scoped: it still makes sense while calls drain.
            break
        case .closed(let error):
            ticket.markEnded()
            continuation.resume(returning: .failure(error))
            return
        case .idle, .handshaking:
            ticket.markEnded()
            continuation.resume(returning: .failure(SwitchboardError(code: .unavailable, message: "not connected")))
            return
        }
        let nonce = self.nextNonce
        self.nextNonce += 1
        ticket.state.value = .ping(nonce)
        self.pings[nonce] = (continuation, ticket)
        context.writeAndFlush(self.wrapOutboundOut(Frame(kind: .ping(nonce: nonce))), promise: nil)
    }

    private func scheduleDeadline(_ deadline: Duration?, callID: UInt64, context: ChannelHandlerContext) -> Scheduled<Void>? {
        guard let deadline else { return nil }
        return context.eventLoop.assumeIsolated().scheduleTask(in: (deadline + Self.localDeadlineGrace).timeAmount) {
            self.finishCall(
                callID,
                error: SwitchboardError(code: .deadlineExceeded, message: "deadline exceeded (no answer from the server within \(deadline))"),
                sendCancel: true
            )
        }
    }

    // MARK: - Cancellation and flow control (called via `eventLoop.execute`)

    /// Cancels whatever the ticket refers to: a call gets a Cancel frame and fails with
    /// `error`; a ticket whose start has not arrived yet is marked so it never starts.
    func cancel(_ ticket: CallTicket, error: SwitchboardError) {
        switch ticket.state.value {
        case .notStarted:
            ticket.state.value = .cancelledBeforeStart(error)
        case .cancelledBeforeStart:
            break
        case .call(let id):
            self.finishCall(id, error: error, sendCancel: true)
        case .ping(let nonce):
            if let ping = self.pings.removeValue(forKey: nonce) {
                ping.ticket.markEnded()
                ping.continuation.resume(returning: .failure(error))
            }
        }
    }

    /// A stream's consumer caught up (below its low watermark).
    func resumeReading(for ticket: CallTicket) {
        guard case .call(let id) = ticket.state.value, self.calls[id]?.paused == true else { return }
        self.calls[id]?.paused = false
        self.streamUnpaused()
    }

    /// Closes the connection on the client's request; open calls fail with `error`.
    func shutdown(_ error: SwitchboardError) {
        if self.closeError == nil { self.closeError = error }
        self.context?.close(promise: nil)
    }

    private func streamUnpaused() {
        self.pausedStreams -= 1
        if self.pausedStreams == 0, self.readPending, let context = self.context {
            self.readPending = false
            context.read()
        }
    }

    // MARK: - Frames of calls

    private func callMessage(_ id: UInt64, _ message: CallMessage) {
        // By index, not by copying the OpenCall out: a copy would share the batch's
        // storage and turn every append below into a full copy.
        guard let index = self.calls.index(forKey: id) else { return }  // already cancelled/ended locally
        if self.calls.values[index].continuation != nil {
            // Unary answers normally come in the CallEnd; accept one in a message too.
            self.calls.values[index].response = message.payload
            return
        }
        guard self.calls.values[index].source != nil else { return }
        guard case .promptEvent(let event)? = message.payload else {
            self.finishCall(
                id,
                error: SwitchboardError(
                    code: .internal,
                    message: "protocol error: expected prompt_event in the stream, got \(message.payload?.caseName ?? "no payload")"
                ),
                sendCancel: true
            )
            return
        }
        // Batched per read cycle: one read carries hundreds of small output frames, and
        // yielding them one by one woke the consuming task for every few events (a
        // futex wake and two context switches each; the benchmarks' profile showed it
        // as the client's largest cost per streamed chunk). One yield per read cycle
        // wakes it at most once.
        if self.calls.values[index].batch.isEmpty { self.batchedCalls.append(id) }
        self.calls.values[index].batch.append(event)
    }

    /// Hands every call's batched events to its stream (end of a read cycle, and
    /// before a call ends so its events come first).
    private func flushEventBatches() {
        guard !self.batchedCalls.isEmpty else { return }
        let ids = self.batchedCalls
        self.batchedCalls = []
        for id in ids { self.flushEventBatch(id) }
    }

    private func flushEventBatch(_ id: UInt64) {
        guard let index = self.calls.index(forKey: id), !self.calls.values[index].batch.isEmpty,
              let source = self.calls.values[index].source
        else { return }
        let events = self.calls.values[index].batch
        self.calls.values[index].batch = []
        self.yield(contentsOf: events, to: source, callID: id)
    }

    private func yield(contentsOf events: [PromptEvent], to source: PromptEventProducer.Source, callID id: UInt64) {
        switch source.yield(contentsOf: events) {
        case .produceMore:
            break
        case .stopProducing:
            if self.calls[id]?.paused == false {
                self.calls[id]?.paused = true
                self.pausedStreams += 1
            }
        case .dropped:
            // The consumer is gone; its didTerminate will arrive too, but there is no
            // reason to wait for it.
            self.finishCall(id, error: SwitchboardError(code: .cancelled, message: "cancelled by the client"), sendCancel: true)
        }
    }

    private func callEnded(_ id: UInt64, _ end: CallEnd) {
        self.flushEventBatch(id)
        guard let call = self.calls[id] else { return }
        if let source = call.source, case .promptEvent(let event)? = end.payload {
            // Tolerate a last event carried in the CallEnd.
            _ = source.yield(event)
        }
        self.calls[id] = nil
        call.deadline?.cancel()
        call.ticket.markEnded()
        if call.paused { self.streamUnpaused() }
        if let continuation = call.continuation {
            if end.code == .ok {
                continuation.resume(returning: .success(end.payload ?? call.response))
            } else {
                continuation.resume(returning: .failure(SwitchboardError(code: end.code, message: end.message)))
            }
        } else if let source = call.source {
            if end.code == .ok {
                source.finish()
            } else {
                source.finish(SwitchboardError(code: end.code, message: end.message))
            }
        }
    }

    /// Ends call `id` locally with `error`, telling the server when asked to.
    private func finishCall(_ id: UInt64, error: SwitchboardError, sendCancel: Bool) {
        guard let call = self.calls.removeValue(forKey: id) else { return }
        call.deadline?.cancel()
        // Before finishing the source: `finish` may call `didTerminate` synchronously,
        // which must then see that there is nothing left to cancel.
        call.ticket.markEnded()
        if sendCancel, let context = self.context {
            switch self.state {
            case .ready, .goingAway:
                context.writeAndFlush(self.wrapOutboundOut(Frame(callID: id, kind: .cancel(reason: error.message))), promise: nil)
            case .idle, .handshaking, .closed:
                break
            }
        }
        if call.paused { self.streamUnpaused() }
        call.continuation?.resume(returning: .failure(error))
        call.source?.finish(error)
    }

    private static func goingAwayError(_ goAway: GoAway) -> SwitchboardError {
        SwitchboardError(
            code: .unavailable,
            message: goAway.message.isEmpty ? "server is going away" : "server is going away: \(goAway.message)"
        )
    }

    private func goAwayReceived(_ goAway: GoAway) {
        if case .closed = self.state { return }
        self.state = .goingAway(goAway)
        if goAway.code != .ok, self.closeError == nil {
            // The server is closing us for a reason; name it when the socket goes.
            self.closeError = SwitchboardError(code: .unavailable, message: "connection closed: \(goAway.message)")
        }
        // Calls the server never processed fail now (they may be retried elsewhere);
        // the ones it accepted keep running to their end.
        let error = Self.goingAwayError(goAway)
        for id in self.calls.keys.sorted() where id > goAway.lastCallID {
            self.finishCall(id, error: error, sendCancel: false)
        }
    }

    private func failEverything(_ error: SwitchboardError) {
        // Events already read are delivered before the error, as they would have been
        // without batching.
        self.flushEventBatches()
        if case .closed = self.state {} else { self.state = .closed(error) }
        self.handshakeTimer?.cancel()
        self.handshakeTimer = nil
        if let promise = self.handshakePromise {
            self.handshakePromise = nil
            promise.fail(error)
        }
        let calls = self.calls
        self.calls = [:]
        self.pausedStreams = 0
        for (_, call) in calls.sorted(by: { $0.key < $1.key }) {
            call.deadline?.cancel()
            call.ticket.markEnded()
            call.continuation?.resume(returning: .failure(error))
            call.source?.finish(error)
        }
        let pings = self.pings
        self.pings = [:]
        for (_, ping) in pings {
            ping.ticket.markEnded()
            ping.continuation.resume(returning: .failure(error))
        }
    }
}
