import NIOCore
import NIOPosix
import SwitchboardProtocol
import SwitchboardTransport

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Opens the socket, installs the pipeline and waits for the handshake.
enum Connector {
    static func connect(socketPath: String, configuration: ClientConfiguration) async throws(SwitchboardError) -> (any Channel, Handshake) {
        // The shared NIO group: a client is cheap and never has to shut threads down.
        let hello = Hello(clientName: configuration.clientName, maxFrameSize: configuration.maxFrameSize)
        try Frame(kind: .hello(hello)).checkStringsBeforeSending()
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let handshakePromise = eventLoop.makePromise(of: Handshake.self)
        let maxFrameSize = configuration.maxFrameSize == 0 ? ProtocolVersion.defaultMaxFrameSize : configuration.maxFrameSize
        let timeLimit = configuration.connectTimeout

        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeLimit.timeAmount)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = ClientHandler(
                        hello: hello,
                        socketPath: socketPath,
                        handshakeTimeLimit: timeLimit,
                        handshakePromise: handshakePromise
                    )
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(FrameDecoder(maximumFrameSize: maxFrameSize)),
                        MessageToByteHandler(FrameEncoder()),
                        handler,
                    ])
                }
            }

        let channel: any Channel
        do {
            channel = try await bootstrap.connect(unixDomainSocketPath: socketPath).get()
        } catch {
            let mapped = Self.connectError(error, socketPath: socketPath)
            handshakePromise.fail(mapped)  // never left dangling; a second completion is a no-op
            throw mapped
        }

        do {
            let handshake = try await withTaskCancellationHandler {
                try await handshakePromise.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
            return (channel, handshake)
        } catch {
            channel.close(promise: nil)
            if Task.isCancelled {
                throw SwitchboardError(code: .cancelled, message: "cancelled while connecting to \(socketPath)")
            }
            if let error = error as? SwitchboardError {
                if error.code == .unavailable, error.message.hasPrefix("connection closed") {
                    throw SwitchboardError(
                        code: .unavailable,
                        message: "cannot connect to \(socketPath): server closed the connection during the handshake",
                        cause: error
                    )
                }
                throw error
            }
            throw SwitchboardError(code: .unavailable, message: "cannot connect to \(socketPath): \(error)", cause: error)
        }
    }

    /// Turns a connect failure into the message a user can act on.
    static func connectError(_ error: any Error, socketPath: String) -> SwitchboardError {
        if let error = error as? IOError {
            if error.errnoCode == ENOENT {
                return SwitchboardError(code: .unavailable, message: "no server at \(socketPath)", cause: error)
            }
            return SwitchboardError(
                code: .unavailable,
                message: "cannot connect to \(socketPath): \(Self.errnoText(error.errnoCode))",
                cause: error
            )
        }
        if let error = error as? SocketAddressError, case .unixDomainSocketPathTooLong = error {
            return SwitchboardError(code: .unavailable, message: "cannot connect to \(socketPath): socket path too long", cause: error)
        }
        if error is ChannelError, case .connectTimeout = error as? ChannelError {
            return SwitchboardError(code: .unavailable, message: "cannot connect to \(socketPath): timed out", cause: error)
        }
        return SwitchboardError(code: .unavailable, message: "cannot connect to \(socketPath): \(error)", cause: error)
    }

    static func errnoText(_ code: CInt) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}
