import Synchronization
import SwitchboardCore
import SwitchboardProtocol

/// One `/switchboard.v1.Prompts/Attach` call: runs the core's ``TurnAttachment``
/// on its own task (it reads the store and waits for the turn) and streams its
/// events through the call's writer, with the same backpressure as a prompt.
///
/// Unlike a prompt, nothing depends on the attacher: cancelling it (a Cancel
/// frame, a closed connection, its deadline, shutdown) only stops the replay;
/// the turn it follows is not touched.
final class AttachCall: Sendable {
    let callID: UInt64
    let writer: StreamingCallWriter
    private let attachment: TurnAttachment
    private let deadline: ContinuousClock.Instant?
    private let state = Mutex<State>(State())

    private struct State {
        var task: Task<Void, Never>?
        var cancelled = false
        /// A status the server imposes on the call instead of the attachment's own.
        var imposed: (code: StatusCode, message: String)?
    }

    init(callID: UInt64, attachment: TurnAttachment, writer: StreamingCallWriter, deadline: ContinuousClock.Instant?) {
        self.callID = callID
        self.attachment = attachment
        self.writer = writer
        self.deadline = deadline
    }

    /// Starts the call's task; `done` runs when it has ended.
    func start(done: @escaping @Sendable () -> Void) {
        let task = Task {
            await run()
            done()
        }
        let cancelNow = state.withLockAnnotated { state in
            state.task = task
            return state.cancelled
        }
        if cancelNow { task.cancel() }
    }

    /// Stops the call; it ends with `code`/`message`.
    func cancel(code: StatusCode, message: String) {
        let task = state.withLockAnnotated { state in
            if state.imposed == nil { state.imposed = (code, message) }
            state.cancelled = true
            return state.task
        }
        task?.cancel()
    }

    /// The connection is gone: stop at once, nothing more is written.
    func connectionClosed() {
        writer.close()
        cancel(code: .cancelled, message: "client disconnected")
    }

    private func run() async {
        let callID = self.callID
        let writer = self.writer
        // A timer, not a sleeping task: a cancelled sleep would hold its memory
        // until the deadline (see `DeadlineTimer`).
        let expiry = deadline.map { deadline in
            DeadlineTimer(deadline: deadline) { [weak self] in
                self?.cancel(code: .deadlineExceeded, message: "attach deadline exceeded")
            }
        }
        defer { expiry?.cancel() }
        var end: CallEnd
        do throws(SwitchboardError) {
            let outcome = try await attachment.run { event in
                // The writer only notices cancellation when it has to wait for the
                // client, and a replay of stored chunks to a fast reader never
                // does: without this check a cancelled attach, or one past its
                // deadline, would replay everything and end OK.
                if Task.isCancelled {
                    throw SwitchboardError(code: .cancelled, message: "attach cancelled")
                }
                try await writer.send(Frame(callID: callID, kind: .message(CallMessage(payload: .promptEvent(event)))))
            }
            end = CallEnd(code: outcome.code, message: outcome.message)
        } catch {
            end = CallEnd(code: error.code, message: error.message)
        }
        // A cancel, deadline or shutdown decides the status whenever it happened
        // before the end is written, even if the attachment had finished: the
        // call was stopped, and its status says why.
        if let imposed = state.withLockAnnotated({ $0.imposed }) {
            end = CallEnd(code: imposed.code, message: imposed.message)
        }
        writer.finish(with: [Frame(callID: callID, kind: .end(end))])
    }
}
