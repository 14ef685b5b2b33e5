import NIOCore
import SwitchboardProtocol

/// The events of one prompt: `accepted`, `started`, `output`…, `finished`; or of
/// one attach: `attached`, `output`…, `finished`.
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

    /// What the stream's call is: a prompt, or an attach to a turn.
    enum Call: Sendable {
        case prompt(PromptRequest)
        case attach(AttachRequest)
    }

    let client: SwitchboardClient
    let call: Call
    let timeout: Duration?
    /// For a prompt only: what a lost connection does (see ``ResumePolicy``).
    var resume: ResumePolicy = .off
    var onReattach: (@Sendable (TurnAttached) -> Void)?

    public func makeAsyncIterator() -> AsyncIterator {
        if let error = self.preflightError() {
            return AsyncIterator(failure: error)
        }
        let inner = Self.open(self.call, on: self.client, timeout: self.timeout)
        if case .prompt(let request) = self.call, case .reattach(let policy) = self.resume {
            let resumer = PromptResumer(
                client: self.client,
                sessionID: request.sessionID,
                policy: policy,
                deadline: self.timeout.map { ContinuousClock.now + $0 },
                onReattach: self.onReattach
            )
            return AsyncIterator(inner: inner, resumer: resumer)
        }
        return AsyncIterator(inner: inner)
    }

    /// Starts `call` on `client`'s connection and returns the iterator over its events.
    static func open(_ call: Call, on client: SwitchboardClient, timeout: Duration?) -> PromptEventProducer.AsyncIterator {
        let handler = client.handler
        let ticket = CallTicket(eventLoop: handler.eventLoop)
        let new = PromptEventProducer.makeSequence(
            elementType: PromptEvent.self,
            backPressureStrategy: .init(lowWatermark: Self.lowWatermark, highWatermark: Self.highWatermark),
            finishOnDeinit: true,
            delegate: PromptStreamDelegate(handler: handler, ticket: ticket)
        )
        let start = CallStart(
            method: call.method,
            timeoutMs: timeout?.wireMilliseconds ?? 0,
            payload: call.payload,
            halfClose: true
        )
        let source = new.source
        handler.eventLoop.execute {
            handler.value.startStream(start, ticket: ticket, localDeadline: timeout, source: source)
        }
        return new.sequence.makeAsyncIterator()
    }

    /// Failures that need no round trip: a cancelled task, a non-positive timeout, a
    /// string with a NUL byte (INVALID_ARGUMENT, as the server would answer) and a
    /// prompt too large for one frame (sending it would cost the whole connection).
    private func preflightError() -> SwitchboardError? {
        if Task.isCancelled {
            return SwitchboardClient.cancelledError
        }
        if let timeout, !timeout.isPositive {
            return SwitchboardError(code: .deadlineExceeded, message: "deadline exceeded (timeout \(timeout))")
        }
        if let invalid = Frame(kind: .start(CallStart(method: call.method, payload: call.payload))).fieldWithNUL() {
            return invalid.error
        }
        guard case .prompt(let request) = self.call else { return nil }
        let limit = Int(self.client.welcome.maxFrameSize == 0 ? ProtocolVersion.defaultMaxFrameSize : self.client.welcome.maxFrameSize)
        // Only large prompts pay for an exact size check (the frame encoded once more).
        if request.prompt.utf8.count + 1024 > limit {
            let frame = Frame(
                callID: UInt64(UInt32.max),
                kind: .start(CallStart(method: MethodName.prompt, timeoutMs: UInt64(UInt32.max), payload: .promptRequest(request), halfClose: true))
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
        /// Set when the stream re-attaches after a lost connection.
        private var resumer: PromptResumer?

        init(inner: PromptEventProducer.AsyncIterator, resumer: PromptResumer? = nil) {
            self.inner = inner
            self.resumer = resumer
        }

        init(failure: SwitchboardError) {
            self.failure = failure
        }

        public mutating func next() async throws(SwitchboardError) -> PromptEvent? {
            if let failure = self.failure {
                self.failure = nil
                throw failure
            }
            guard self.resumer != nil else {
                return try await self.nextFromInner()
            }
            while true {
                if let event = self.resumer?.takePending() { return event }
                let event: PromptEvent?
                do {
                    event = try await self.nextFromInner()
                } catch {
                    guard var resumer = self.resumer else { throw error }
                    self.resumer = nil  // not reentrant; restored below
                    do {
                        self.inner = try await resumer.reattach(after: error)
                        self.resumer = resumer
                        continue
                    } catch {
                        await resumer.closeConnection()
                        throw error
                    }
                }
                guard let event else {
                    await self.resumer?.closeConnection()
                    self.resumer = nil
                    return nil
                }
                do {
                    if let delivered = try self.resumer?.filter(event) { return delivered }
                } catch {
                    self.inner = nil
                    await self.resumer?.closeConnection()
                    self.resumer = nil
                    throw error
                }
            }
        }

        /// The next event of the current call, with its failure as a `SwitchboardError`.
        private mutating func nextFromInner() async throws(SwitchboardError) -> PromptEvent? {
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

extension PromptStream.Call {
    var method: String {
        switch self {
        case .prompt: MethodName.prompt
        case .attach: MethodName.attach
        }
    }

    var payload: Payload {
        switch self {
        case .prompt(let request): .promptRequest(request)
        case .attach(let request): .attachRequest(request)
        }
    }
}
