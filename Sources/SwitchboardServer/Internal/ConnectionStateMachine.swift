import SwitchboardProtocol

/// The life of one connection: handshake, active, going away (drain), closed;
/// and which frames each phase accepts.
///
/// Kept apart from the handler so the protocol rules read in one place and the
/// handler only carries out the decisions.
struct ConnectionStateMachine {
    enum State: Equatable {
        case awaitingHello
        case active
        /// GoAway(OK) sent: open calls run to their end, new ones are refused.
        case goingAway
        case closed
    }

    private(set) var state: State = .awaitingHello

    /// What the handler does with an incoming frame.
    enum Disposition: Equatable {
        case handshake(Hello)
        case ping(nonce: UInt64)
        /// A frame of a call (start, message, half-close, cancel).
        case call
        case ignore
        /// Close the connection with GoAway(code, message).
        case protocolError(StatusCode, String)
    }

    func classify(_ frame: Frame) -> Disposition {
        switch state {
        case .closed:
            return .ignore
        case .awaitingHello:
            if case .hello(let hello) = frame.kind, frame.callID == 0 {
                return .handshake(hello)
            }
            return .protocolError(.failedPrecondition, "expected Hello as the first frame")
        case .active, .goingAway:
            switch frame.kind {
            case .hello:
                return .protocolError(.invalidArgument, "unexpected hello frame: the handshake is already done")
            case .welcome, .end, .goAway:
                return .protocolError(.invalidArgument, "unexpected \(frame.kind.fieldName) frame from client")
            case .ping(let nonce):
                return .ping(nonce: nonce)
            case .pong:
                return .ignore
            case .start, .message, .halfClose, .cancel:
                if frame.callID == 0 {
                    return .protocolError(
                        .invalidArgument,
                        "\(frame.kind.fieldName) frame on call id 0, which is reserved for the connection"
                    )
                }
                return .call
            }
        }
    }

    enum HelloResult: Equatable {
        case welcome
        case reject(StatusCode, String)
    }

    mutating func receiveHello(_ hello: Hello) -> HelloResult {
        precondition(state == .awaitingHello, "Hello is only classified as a handshake before one")
        guard hello.minVersion <= ProtocolVersion.current, hello.maxVersion >= ProtocolVersion.current else {
            return .reject(
                .failedPrecondition,
                "server speaks protocol version \(ProtocolVersion.current); client offered \(hello.minVersion)–\(hello.maxVersion)"
            )
        }
        state = .active
        return .welcome
    }

    var acceptsNewCalls: Bool { state == .active }
    var isOpen: Bool { state != .closed }

    enum GoAwayAction: Equatable {
        /// Send GoAway(OK) and keep serving the open calls.
        case sendGoAway
        /// Not past the handshake: refuse the connection (GoAway UNAVAILABLE) and close.
        case close
        case none
    }

    mutating func beginGoingAway() -> GoAwayAction {
        switch state {
        case .active:
            state = .goingAway
            return .sendGoAway
        case .awaitingHello:
            state = .closed
            return .close
        case .goingAway, .closed:
            return .none
        }
    }

    /// Marks the connection closed; false if it already was.
    mutating func close() -> Bool {
        defer { state = .closed }
        return state != .closed
    }
}

extension Frame.Kind {
    /// The proto field name of the frame kind, for error messages.
    var fieldName: String {
        switch self {
        case .hello: "hello"
        case .welcome: "welcome"
        case .start: "start"
        case .message: "message"
        case .halfClose: "half_close"
        case .cancel: "cancel"
        case .end: "end"
        case .ping: "ping"
        case .pong: "pong"
        case .goAway: "go_away"
        }
    }
}
