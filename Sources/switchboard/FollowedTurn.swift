import Synchronization
import SwitchboardProtocol

/// What a `prompt` or `attach` command knows about the turn it streams, so that
/// Ctrl-C can say when the turn outlives the command.
///
/// Ctrl-C cancels the running call. For a Prompt call that cancels the turn; for an
/// Attach (the `attach` command, or `prompt --reattach` once it re-attached) it ends
/// only the attach and the turn keeps running. A second Ctrl-C exits at once,
/// closing the connection: a turn is detached then (unless the prompt set
/// `--cancel-on-disconnect`) and may run on if the first Ctrl-C's cancel had not
/// reached the server. In those cases the command tells how to follow the turn again.
final class FollowedTurn: Sendable {
    private struct State {
        var sessionID: String?
        var turnID: String?
        /// The stream is an Attach call: cancelling it leaves the turn running.
        var attached: Bool
        /// `finished` arrived: nothing is left running.
        var ended = false
    }

    private let state: Mutex<State>
    /// A lost connection of the Prompt call itself cancels the turn.
    private let cancelOnDisconnect: Bool

    init(sessionID: String?, attached: Bool, cancelOnDisconnect: Bool = false) {
        self.state = Mutex(State(sessionID: sessionID, attached: attached))
        self.cancelOnDisconnect = cancelOnDisconnect
    }

    func setSession(_ id: String) {
        state.withLockAnnotated { $0.sessionID = id }
    }

    /// Every event the stream delivers, and the `attached` of a re-attach.
    func saw(_ event: PromptEvent) {
        state.withLockAnnotated { state in
            switch event {
            case .accepted(let accepted):
                state.turnID = accepted.turnID
            case .attached(let attached):
                state.turnID = attached.turnID
                state.attached = true
                if attached.state == .finished { state.ended = true }
            case .started, .output:
                break
            case .finished:
                state.ended = true
            }
        }
    }

    /// The note for stderr after Ctrl-C ended the stream (`hardExit`: the second
    /// Ctrl-C, which exits without waiting for the cancel), or nil when the turn
    /// does not outlive the command or is unknown.
    func noteAfterInterrupt(hardExit: Bool) -> String? {
        let state = state.withLockAnnotated { $0 }
        guard let sessionID = state.sessionID, let turnID = state.turnID, !state.ended else { return nil }
        let follow = "`switchboard attach \(sessionID) --turn \(turnID)` to follow it"
        if state.attached {
            // A prompt that lost its connection with --cancel-on-disconnect re-attached
            // to a turn the server is cancelling.
            return cancelOnDisconnect ? nil : "switchboard: turn \(turnID) keeps running; \(follow)\n"
        }
        if hardExit, !cancelOnDisconnect {
            // The Prompt call's Cancel went out with the first Ctrl-C, but whether it
            // reached the server before the connection closed is not known.
            return "switchboard: turn \(turnID) may keep running (unless the cancel reached the server); \(follow)\n"
        }
        return nil
    }
}
