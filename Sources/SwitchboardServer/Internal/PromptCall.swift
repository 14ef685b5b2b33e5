import Synchronization
import SwitchboardCore
import SwitchboardProtocol

/// One `/switchboard.v1.Prompts/Prompt` call after its prompt was accepted: runs
/// the turn on its own task and streams its events through the call's writer.
///
/// It is the only call kind that leaves the event loop, because a turn takes as
/// long as its backend does; everything else is answered inside `channelRead`.
final class PromptCall: Sendable {
    let callID: UInt64
    let turn: PendingTurn
    let writer: StreamingCallWriter
    /// The request's `cancel_on_disconnect`: a vanished client cancels the turn
    /// instead of leaving it to run detached.
    let cancelOnDisconnect: Bool
    /// A status the server imposes on the call (e.g. shutdown) instead of the
    /// turn's own; the first one set wins.
    private let imposedStatus = Mutex<(code: StatusCode, message: String)?>(nil)

    init(callID: UInt64, turn: PendingTurn, writer: StreamingCallWriter, cancelOnDisconnect: Bool) {
        self.callID = callID
        self.turn = turn
        self.writer = writer
        self.cancelOnDisconnect = cancelOnDisconnect
    }

    /// The client's connection is gone. By default the turn runs on, detached: its
    /// output is still recorded (for Attach and ListTurns), only the writing stops,
    /// without error or backpressure. With `cancel_on_disconnect` it is cancelled.
    func connectionClosed() {
        if cancelOnDisconnect {
            turn.cancel(reason: "client disconnected")
            writer.close()
        } else {
            writer.detach()
        }
    }

    /// Ends the turn with `reason`, and the call with `code`/`message` rather than
    /// the turn's CANCELLED.
    func cancel(reason: String, callStatus code: StatusCode, message: String) {
        imposedStatus.withLockAnnotated { status in
            if status == nil { status = (code, message) }
        }
        turn.cancel(reason: reason)
    }

    /// Runs the turn to its end: started, output..., finished, then `CallEnd`.
    func run() async {
        let callID = self.callID
        let turnID = turn.turnID
        let writer = self.writer
        let outcome = await turn.run { event in
            let promptEvent: PromptEvent
            switch event {
            case .started:
                promptEvent = .started(turnID: turnID)
            case .output(let chunk):
                promptEvent = .output(chunk)
            }
            try await writer.send(Frame(callID: callID, kind: .message(CallMessage(payload: .promptEvent(promptEvent)))))
        }
        let status = imposedStatus.withLockAnnotated { $0 } ?? (code: outcome.code, message: outcome.message)
        writer.finish(with: [
            Frame(callID: callID, kind: .message(CallMessage(payload: .promptEvent(.finished(outcome.finished))))),
            Frame(callID: callID, kind: .end(CallEnd(code: status.code, message: status.message))),
        ])
    }
}
