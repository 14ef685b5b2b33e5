import NIOCore
import NIOPosix
import SwitchboardProtocol
import SwitchboardTransport

/// What the server tells a registered worker.
public enum WorkerEvent: Sendable, Hashable {
    /// Run this turn: stream output with ``WorkerSession/output(turnID:_:)``, then
    /// ``WorkerSession/finish(turnID:stopReason:)`` or ``WorkerSession/fail(turnID:code:message:)``.
    case assignment(TurnAssignment)
    /// Stop working on this turn (the prompting client went away, the session was
    /// closed, or the deadline passed); its slot is already free.
    case cancellation(turnID: String, reason: String)
}

/// A worker's connection: one `/switchboard.v1.Workers/Connect` call on a
/// connection of its own.
///
/// ``connect(socketPath:register:configuration:)`` returns once the server has
/// accepted the registration. ``events`` yields assignments and cancellations; it
/// finishes when the call ends normally and throws the call's error otherwise
/// (UNAVAILABLE when the connection is lost). Server heartbeats and connection
/// pings are answered automatically on the connection's event loop.
public final class WorkerSession: Sendable {
    public let registered: WorkerRegistered
    public var workerID: String { registered.workerID }
    public let events: AsyncThrowingStream<WorkerEvent, any Error>
    private let channel: any Channel

    static let callID: UInt64 = 1

    private init(registered: WorkerRegistered, events: AsyncThrowingStream<WorkerEvent, any Error>, channel: any Channel) {
        self.registered = registered
        self.events = events
        self.channel = channel
    }

    deinit {
        channel.close(promise: nil)
    }

    /// Connects, says Hello and registers. Throws the server's error for a bad
    /// registration (INVALID_ARGUMENT for capacity 0, ...); labels that break
    /// ``LabelRules`` are refused before connecting.
    public static func connect(
        socketPath: String,
        register: WorkerRegister,
        configuration: ClientConfiguration = .init()
    ) async throws -> WorkerSession {
        // Encoding first, then the label rules: the server's order (it checks strings as it decodes).
        try Frame(kind: .start(CallStart(method: MethodName.workerConnect, payload: .workerMessage(.register(register)))))
            .checkStringsBeforeSending()
        try LabelRules.validate(register.labels, field: "register.labels")
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let registration = eventLoop.makePromise(of: WorkerRegistered.self)
        let (events, continuation) = AsyncThrowingStream.makeStream(of: WorkerEvent.self, throwing: (any Error).self)
        let clientName = configuration.clientName == ClientConfiguration().clientName
            ? "switchboard-swift-worker" : configuration.clientName
        let hello = Hello(clientName: clientName, maxFrameSize: configuration.maxFrameSize)
        let maxFrameSize = configuration.maxFrameSize == 0 ? ProtocolVersion.defaultMaxFrameSize : configuration.maxFrameSize
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout.timeAmount)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(FrameDecoder(maximumFrameSize: maxFrameSize)),
                        MessageToByteHandler(FrameEncoder()),
                        WorkerChannelHandler(
                            hello: hello,
                            register: register,
                            registration: registration,
                            events: continuation
                        ),
                    ])
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(unixDomainSocketPath: socketPath).get()
        } catch {
            let mapped = Connector.connectError(error, socketPath: socketPath)
            registration.fail(mapped)
            continuation.finish(throwing: mapped)
            throw mapped
        }
        let timeout = channel.eventLoop.scheduleTask(in: configuration.connectTimeout.timeAmount) {
            registration.fail(SwitchboardError(code: .deadlineExceeded, message: "no answer to the worker registration"))
            channel.close(promise: nil)
        }
        do {
            let registered = try await withTaskCancellationHandler {
                try await registration.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
            timeout.cancel()
            return WorkerSession(registered: registered, events: events, channel: channel)
        } catch {
            timeout.cancel()
            channel.close(promise: nil)
            throw error
        }
    }

    /// Streams output for one of this worker's turns (empty data is not sent).
    public func output(turnID: String, _ data: [UInt8]) async throws {
        guard !data.isEmpty else { return }
        // The data is bytes (anything goes); only the turn id is a string.
        try Self.checkStrings(.output(turnID: turnID, data: []))
        try await send(.output(turnID: turnID, data: data))
    }

    /// The turn is done.
    public func finish(turnID: String, stopReason: String = "end_turn") async throws {
        let message = WorkerMessage.finished(turnID: turnID, stopReason: stopReason)
        try Self.checkStrings(message)
        try await send(message)
    }

    /// The turn failed; the prompting client gets `code` and `message`.
    public func fail(turnID: String, code: StatusCode, message: String) async throws {
        let failure = WorkerMessage.failed(turnID: turnID, code: code, message: message)
        try Self.checkStrings(failure)
        try await send(failure)
    }

    /// INVALID_ARGUMENT for a string with a NUL byte, which the server would refuse
    /// by ending this worker's call.
    private static func checkStrings(_ message: WorkerMessage) throws(SwitchboardError) {
        try Frame(callID: callID, kind: .message(CallMessage(payload: .workerMessage(message)))).checkStringsBeforeSending()
    }

    /// Sends any worker message as it is, unchecked (tests use it to break the
    /// protocol on purpose).
    public func send(_ message: WorkerMessage) async throws {
        let frame = Frame(callID: Self.callID, kind: .message(CallMessage(payload: .workerMessage(message))))
        do {
            try await channel.writeAndFlush(frame)
        } catch {
            throw SwitchboardError(code: .unavailable, message: "worker connection lost: \(error)", cause: error)
        }
    }

    /// Leaves the pool (half-close) and closes the connection.
    public func close() async {
        try? await channel.writeAndFlush(Frame(callID: Self.callID, kind: .halfClose))
        try? await channel.close()
    }
}

/// The worker connection's pipeline end: handshake, registration, heartbeats.
/// Event-loop confined.
final class WorkerChannelHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    private let hello: Hello
    private let register: WorkerRegister
    private let registration: EventLoopPromise<WorkerRegistered>
    private let events: AsyncThrowingStream<WorkerEvent, any Error>.Continuation
    private var isRegistered = false
    private var isFinished = false

    init(
        hello: Hello,
        register: WorkerRegister,
        registration: EventLoopPromise<WorkerRegistered>,
        events: AsyncThrowingStream<WorkerEvent, any Error>.Continuation
    ) {
        self.hello = hello
        self.register = register
        self.registration = registration
        self.events = events
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(Self.wrapOutboundOut(Frame(kind: .hello(hello))), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(SwitchboardError(code: .unavailable, message: "connection to the server closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let error = error as? SwitchboardError
            ?? SwitchboardError(code: .unavailable, message: "worker connection failed: \(error)", cause: error)
        finish(error)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        switch frame.kind {
        case .welcome:
            let start = CallStart(method: MethodName.workerConnect, payload: .workerMessage(.register(register)))
            context.writeAndFlush(Self.wrapOutboundOut(Frame(callID: WorkerSession.callID, kind: .start(start))), promise: nil)
        case .ping(let nonce):
            context.writeAndFlush(Self.wrapOutboundOut(Frame(kind: .pong(nonce: nonce))), promise: nil)
        case .goAway(let goAway):
            if goAway.code != .ok {
                finish(SwitchboardError(code: goAway.code, message: goAway.message))
                context.close(promise: nil)
            }
        case .message(let message):
            guard frame.callID == WorkerSession.callID else { return }
            guard case .workerCommand(let command)? = message.payload else {
                let got = message.payload?.caseName ?? "nothing"
                finish(SwitchboardError(code: .internal, message: "server sent \(got) on the worker call"))
                context.close(promise: nil)
                return
            }
            switch command {
            case .registered(let registered):
                isRegistered = true
                registration.succeed(registered)
            case .assignment(let assignment):
                events.yield(.assignment(assignment))
            case .cancellation(let turnID, let reason):
                events.yield(.cancellation(turnID: turnID, reason: reason))
            case .heartbeat(let nonce):
                let ack = Frame(
                    callID: WorkerSession.callID,
                    kind: .message(CallMessage(payload: .workerMessage(.heartbeatAck(nonce: nonce))))
                )
                context.writeAndFlush(Self.wrapOutboundOut(ack), promise: nil)
            }
        case .end(let end):
            guard frame.callID == WorkerSession.callID else { return }
            if end.code == .ok {
                finish(nil)
            } else {
                finish(SwitchboardError(code: end.code, message: end.message))
            }
            context.close(promise: nil)
        case .hello, .start, .halfClose, .cancel, .pong:
            break
        }
    }

    private func finish(_ error: SwitchboardError?) {
        guard !isFinished else { return }
        isFinished = true
        if !isRegistered {
            registration.fail(error ?? SwitchboardError(code: .unavailable, message: "the worker call ended before registration"))
        }
        if let error {
            events.finish(throwing: error)
        } else {
            events.finish()
        }
    }
}
