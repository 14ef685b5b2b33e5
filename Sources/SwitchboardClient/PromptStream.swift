import NIOCore
import SwitchboardProtocol

/// The events of one prompt: `accepted`, `started`, `output`…, `finished`.
///
/// The call starts when iteration starts (`makeAsyncIterator`), so a stream that is
/// never iterated costs nothing. Iteration ends normally when the turn ends `OK` and
/// throws a `SwitchboardError` with the server's code otherwise (e.g.
/// `FAILED_PRECONDITION` for a busy session with `.reject`, `DEADLINE_EXCEEDED`,
/// `CANCELLED` when the session is closed under it).
///
/// Breaking out of the loop, dropping the iterator, or cancelling the iterating task
/// sends a Cancel frame; the server then cancels the turn. Cancellation of the task
/// surfaces as `CANCELLED`.
///
/// **Backpressure.** Received events are buffered per stream up to a high watermark
/// (``highWatermark`` events). Above it the connection stops reading from the socket
/// until the consumer has caught up to the low watermark; the server then stops
/// sending, and its turn slows down rather than anyone buffering without bound. The
/// pause applies to the **whole connection**: every other call on the same client
/// waits too. Consume streams promptly, and do not wait on another call of the same
/// client from inside a loop over a stream whose buffer may fill (use a second client
/// for that).
///
/// A stream is iterated once (one iterator per stream).
public struct PromptStream: AsyncSequence, Sendable {
    public typealias Element = PromptEvent
    public typealias Failure = SwitchboardError

    /// Events buffered before the connection stops reading.
    public static let highWatermark = 64
    /// Buffer depth at which reading resumes.
    public static let lowWatermark = 16

    let client: SwitchboardClient
    let request: PromptRequest
    let timeout: Duration?

    public func makeAsyncIterator() -> AsyncIterator {
        if let error = self.preflightError() {
            return AsyncIterator(failure: error)
        }
        let handler = self.client.handler
        let ticket = CallTicket(eventLoop: handler.eventLoop)
        let new = PromptEventProducer.makeSequence(
            elementType: PromptEvent.self,
            backPressureStrategy: .init(lowWatermark: Self.lowWatermark, highWatermark: Self.highWatermark),
            finishOnDeinit: true,
            delegate: PromptStreamDelegate(handler: handler, ticket: ticket)
        )
        let start = CallStart(
            method: MethodName.prompt,
            timeoutMs: self.timeout?.wireMilliseconds ?? 0,
            payload: .promptRequest(self.request),
            halfClose: true
        )
        let source = new.source
        let timeout = self.timeout
        handler.eventLoop.execute {
            handler.value.startStream(start, ticket: ticket, localDeadline: timeout, source: source)
        }
        return AsyncIterator(inner: new.sequence.makeAsyncIterator())
    }

    /// Failures that need no round trip: a cancelled task, a non-positive timeout, and a
    /// prompt too large for one frame (sending it would cost the whole connection).
    private func preflightError() -> SwitchboardError? {
        if Task.isCancelled {
            return SwitchboardClient.cancelledError
        }
        if let timeout, !timeout.isPositive {
            return SwitchboardError(code: .deadlineExceeded, message: "deadline exceeded (timeout \(timeout))")
        }
        let limit = Int(self.client.welcome.maxFrameSize == 0 ? ProtocolVersion.defaultMaxFrameSize : self.client.welcome.maxFrameSize)
        // Only large prompts pay for an exact size check (the frame encoded once more).
        if self.request.prompt.utf8.count + 1024 > limit {
            let frame = Frame(
                callID: UInt64(UInt32.max),
                kind: .start(CallStart(method: MethodName.prompt, timeoutMs: UInt64(UInt32.max), payload: .promptRequest(self.request), halfClose: true))
            )
            let size = frame.serializedBytes().count
            if size > limit {
                return SwitchboardError(
                    code: .resourceExhausted,
                    message: "prompt too large: its frame is \(size) bytes, the server accepts at most \(limit)"
                )
            }
        }
        return nil
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Element = PromptEvent
        public typealias Failure = SwitchboardError

        private var inner: PromptEventProducer.AsyncIterator?
        private var failure: SwitchboardError?

        init(inner: PromptEventProducer.AsyncIterator) {
            self.inner = inner
        }

        init(failure: SwitchboardError) {
            self.failure = failure
        }

        public mutating func next() async throws(SwitchboardError) -> PromptEvent? {
            if let failure = self.failure {
                self.failure = nil
                throw failure
            }
            guard let inner = self.inner else { return nil }
            do {
                if let event = try await inner.next() {
                    return event
                }
                self.inner = nil
                return nil
            } catch let error as SwitchboardError {
                self.inner = nil
                throw error
            } catch is CancellationError {
                self.inner = nil
                throw SwitchboardClient.cancelledError
            } catch {
                self.inner = nil
                throw SwitchboardError(code: .unknown, message: "\(error)", cause: error)
            }
        }
    }
}
