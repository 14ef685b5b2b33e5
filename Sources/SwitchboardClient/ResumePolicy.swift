import SwitchboardProtocol

/// What a prompt stream does when its connection is lost while the turn runs.
///
/// The server keeps a turn running when its caller's connection goes away (unless
/// the prompt asked for `cancelOnDisconnect`) and keeps its output, so a stream can
/// pick the turn up again with `/switchboard.v1.Prompts/Attach`. With
/// ``reattach(_:)`` the stream does that by itself: it connects again (on a
/// connection of its own, retried as the ``RetryPolicy`` allows), attaches after the
/// last chunk it delivered, and carries on. The caller sees one seamless turn:
/// `accepted`, `started`, every `output` exactly once in sequence order, `finished`,
/// then the turn's status. The `attached` events of re-attaches are not delivered
/// (they are no part of the turn); pass `onReattach` to
/// ``SwitchboardClient/prompt(sessionID:_:whenBusy:timeout:cancelOnDisconnect:resume:onReattach:)``
/// to hear about them.
///
/// A prompt is never sent twice (it is not idempotent): when the connection is lost
/// before the server's `accepted` event arrived, the stream fails with
/// `UNAVAILABLE` even with ``reattach(_:)``. A turn that a server restart
/// interrupted ends the stream with the server's `ABORTED`; an unknown turn (a
/// server without durable state) with `NOT_FOUND`.
///
/// Once re-attached, the stream follows the turn on a connection of its own (the
/// client's connection stays lost for its other calls). Breaking out of the loop
/// then ends only the attach: the server does not cancel a turn for an attacher.
public enum ResumePolicy: Sendable, Hashable {
    /// A lost connection fails the stream with `UNAVAILABLE` (the default).
    case off
    /// Re-attach after a lost connection. The policy bounds the time spent per loss
    /// (its `totalBudget` starts again with each attach that got through, so a turn
    /// may stay silent for any time between two losses) and the attempts: those count
    /// until the re-attached stream delivers something new, so a turn survives any
    /// number of separate losses but never loops on a server that keeps dropping it.
    case reattach(RetryPolicy = RetryPolicy())
}
