import NIOCore
import Synchronization
import SwitchboardProtocol
import SwitchboardTransport

/// The outbound side of one streaming call: a bounded buffer of encoded frames
/// between the task producing a turn's events and the connection's event loop.
///
/// Why: a turn produces output at its own pace, on its own task, while the socket
/// drains at the client's pace. Frames are encoded by the producer (off the loop,
/// into temporary memory) and appended to one pending buffer here; the first append
/// after a drain schedules *one* hop to the loop, which writes that buffer and
/// flushes once, so a fast producer costs one hop, one buffer and one write per
/// batch, not per chunk. (The benchmarks' profile showed a ByteBuffer allocated per
/// ~40-byte frame, and one NIO write per frame, as this writer's main costs per
/// streamed chunk; see docs/BENCHMARKS.md.) When more than `limit` bytes are
/// waiting, or the channel is not writable, the producer suspends until the loop
/// has written them: a slow reader slows its own turn and nothing else, and the
/// server never buffers without bound.
final class StreamingCallWriter: Sendable {
    let callID: UInt64
    private let peerMaxFrameSize: Int
    private let eventLoop: any EventLoop
    private let handler: NIOLoopBound<ConnectionHandler>
    private let server: ServerContext
    private let state: Mutex<State>

    private struct State {
        /// Encoded frames (length prefix + body) not yet handed to the loop.
        var pending = ByteBuffer()
        var pendingBytes: Int { pending.readableBytes }
        var drainScheduled = false
        /// The channel's writability, as last seen on the loop.
        var writable: Bool
        /// The final frames have been appended.
        var finishing = false
        /// The final frames have been handed to the channel.
        var ended = false
        /// The connection is gone: nothing more is written.
        var closed = false
        /// Closed by ``detach()``: sends succeed and are dropped (a detached turn
        /// runs on without its caller).
        var detached = false
        var waiter: CheckedContinuation<Void, any Error>?

        /// Most bytes that may wait before the producer suspends.
        let limit: Int

        var mustWait: Bool { pendingBytes > 0 && (!writable || pendingBytes > limit) }
    }

    /// What one drain hands to the channel.
    struct Batch {
        var buffers: [ByteBuffer]
        /// The call's last frame is in `buffers`: the call is over on the wire.
        var ended: Bool
    }

    init(
        callID: UInt64,
        limit: Int,
        peerMaxFrameSize: Int,
        writable: Bool,
        eventLoop: any EventLoop,
        handler: NIOLoopBound<ConnectionHandler>,
        server: ServerContext
    ) {
        self.callID = callID
        self.peerMaxFrameSize = peerMaxFrameSize
        self.eventLoop = eventLoop
        self.handler = handler
        self.server = server
        self.state = Mutex(State(writable: writable, limit: limit))
    }

    private static var disconnected: SwitchboardError {
        SwitchboardError(code: .cancelled, message: "client disconnected")
    }

    // MARK: Producer side (any task)

    /// Queues `frame`; suspends while the call has too much unwritten output or
    /// the channel is not writable. Throws once the connection is gone or the
    /// calling task is cancelled.
    func send(_ frame: Frame) async throws {
        // Packed once into temporary memory outside the lock; only the copy into the
        // pending buffer (tens of bytes for an output chunk) happens under it.
        let (scheduleDrain, mustWait, pendingBytes) = try frame.withSerializedBytes { body in
            let size = body.count
            return try state.withLockAnnotated { state throws(SwitchboardError) in
                // Detached first: the client that announced the frame limit is gone,
                // so its limit must not end a turn that now runs without it.
                if state.detached { return (false, false, 0) }
                guard !state.closed else { throw Self.disconnected }
                guard size <= peerMaxFrameSize else {
                    // Sending it would make the client drop the whole connection.
                    throw SwitchboardError(
                        code: .resourceExhausted,
                        message: "an output frame of \(size) bytes exceeds the client's maximum frame size of \(peerMaxFrameSize) bytes"
                    )
                }
                state.pending.writeInteger(UInt32(truncatingIfNeeded: size))
                state.pending.writeBytes(body)
                let schedule = state.writable && !state.drainScheduled
                if schedule { state.drainScheduled = true }
                return (schedule, state.mustWait, state.pendingBytes)
            }
        }
        server.recordPendingOutboundBytes(pendingBytes)
        if scheduleDrain { self.scheduleDrain() }
        if mustWait { try await waitForRoom() }
    }

    /// Queues the call's last frames (never suspends: they are few and small).
    func finish(with frames: [Frame]) {
        let (scheduleDrain, pendingBytes) = state.withLockAnnotated { state in
            guard !state.closed else { return (false, 0) }
            for frame in frames { state.pending.writeFrame(frame) }
            state.finishing = true
            let schedule = state.writable && !state.drainScheduled
            if schedule { state.drainScheduled = true }
            return (schedule, state.pendingBytes)
        }
        server.recordPendingOutboundBytes(pendingBytes)
        if scheduleDrain { self.scheduleDrain() }
    }

    private func waitForRoom() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now: Result<Void, any Error>? = state.withLockAnnotated { state in
                    if state.detached { return .success(()) }
                    if state.closed { return .failure(Self.disconnected) }
                    // Checked under the lock: a cancellation handler that ran
                    // before the waiter is stored has already set this flag.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if !state.mustWait { return .success(()) }
                    state.waiter = continuation
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let waiter = state.withLockAnnotated { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func scheduleDrain() {
        let handler = self.handler
        eventLoop.execute { [self] in
            handler.value.drainWriter(self)
        }
    }

    // MARK: Event-loop side

    /// Takes everything pending if the channel is writable, and wakes the
    /// producer (there is room again). Called on the connection's event loop.
    func takeBatch(writable: Bool) -> Batch {
        let (batch, waiter) = state.withLockAnnotated { state -> (Batch, CheckedContinuation<Void, any Error>?) in
            state.drainScheduled = false
            state.writable = writable
            guard writable, !state.closed, state.pending.readableBytes > 0 else {
                return (Batch(buffers: [], ended: false), nil)
            }
            let buffers = [state.pending]
            state.pending = ByteBuffer()
            let ended = state.finishing && !state.ended
            if ended { state.ended = true }
            defer { state.waiter = nil }
            return (Batch(buffers: buffers, ended: ended), state.waiter)
        }
        waiter?.resume()
        return batch
    }

    /// Records that the channel stopped being writable (called on the loop), so
    /// the producer suspends after its next frame.
    func channelBecameUnwritable() {
        state.withLockAnnotated { $0.writable = false }
    }

    /// The connection is gone but the producer carries on without it (a detached
    /// turn): drop what is pending, and from now on accept and drop every frame
    /// at once, without error and without backpressure.
    func detach() {
        let waiter = state.withLockAnnotated { state in
            state.closed = true
            state.detached = true
            state.pending = ByteBuffer()
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// The connection is gone: drop what is pending and fail the producer.
    func close() {
        let waiter = state.withLockAnnotated { state in
            state.closed = true
            state.pending = ByteBuffer()
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(throwing: Self.disconnected)
    }
}
