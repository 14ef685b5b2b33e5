import SwitchboardProtocol

/// The bookkeeping of a prompt stream with ``ResumePolicy/reattach(_:)``: what the
/// caller has been given so far, and the re-attach after a lost connection.
///
/// Why the stream filters what it delivers: a re-attach replays from the last chunk
/// *delivered*, and the server may still send a chunk twice (an attach that raced
/// the cut) or a second `finished` (the cut came after `finished` but before the
/// `CallEnd`). Every event is checked against the count, so the caller gets each
/// chunk exactly once and in order whatever the server does, and a gap is an error
/// (`DATA_LOSS`) rather than silently missing output.
struct PromptResumer: Sendable {
    /// The prompt's own client; its connection is the one that may be lost.
    let client: SwitchboardClient
    let sessionID: String
    let policy: RetryPolicy
    /// The whole stream's deadline (the prompt's timeout), re-attaches included.
    let deadline: ContinuousClock.Instant?
    let onReattach: (@Sendable (TurnAttached) -> Void)?

    init(
        client: SwitchboardClient,
        sessionID: String,
        policy: RetryPolicy,
        deadline: ContinuousClock.Instant?,
        onReattach: (@Sendable (TurnAttached) -> Void)?
    ) {
        self.client = client
        self.sessionID = sessionID
        self.policy = policy
        self.deadline = deadline
        self.onReattach = onReattach
    }

    /// From the `accepted` event; nil until then (and then nothing may be re-sent).
    private(set) var turnID: String?
    /// The sequence number of the last chunk delivered to the caller.
    private(set) var lastSequence: UInt64 = 0
    private var startedDelivered = false
    private var finishedDelivered = false
    /// Events to deliver before reading on (a `started` made up for one the lost
    /// connection never brought, followed by the event that revealed it).
    private var pending: [PromptEvent] = []
    /// The connection of the current re-attach; owned by the stream.
    private var connection: SwitchboardClient?
    /// Re-attach attempts since something new was last delivered. Only progress resets
    /// it (an attach that got through does not), so a server that keeps accepting the
    /// attach and dropping the stream before sending anything new ends the stream after
    /// the policy's `maxAttempts`.
    private var attemptsWithoutProgress = 0
    /// When the current loss began, for the policy's `totalBudget`: reset by progress
    /// and by an attach that got its `attached` (the connection was back then). A turn
    /// that stays silent for longer than the budget after a re-attach must still get a
    /// full budget for its next loss.
    private var lossStarted: ContinuousClock.Instant?

    mutating func takePending() -> PromptEvent? {
        self.pending.isEmpty ? nil : self.pending.removeFirst()
    }

    // MARK: - Filtering

    /// The event to hand to the caller for `event`, or nil to skip it. Throws
    /// `DATA_LOSS` for a gap in the sequence numbers.
    mutating func filter(_ event: PromptEvent) throws(SwitchboardError) -> PromptEvent? {
        switch event {
        case .accepted(let accepted):
            self.turnID = accepted.turnID
            return event
        case .started:
            if self.startedDelivered { return nil }
            self.startedDelivered = true
            return event
        case .attached(let attached):
            if let turnID, attached.turnID != turnID {
                throw SwitchboardError(
                    code: .internal,
                    message: "re-attach to turn \(turnID) followed turn \(attached.turnID) instead"
                )
            }
            self.onReattach?(attached)
            if attached.state == .running || attached.state == .finished {
                return self.madeUpStarted()
            }
            return nil
        case .output(let chunk):
            if chunk.sequence <= self.lastSequence { return nil }
            guard chunk.sequence == self.lastSequence + 1 else {
                throw SwitchboardError(
                    code: .dataLoss,
                    message: "output gap in turn \(self.turnID ?? "?"): expected chunk \(self.lastSequence + 1), got \(chunk.sequence)"
                )
            }
            self.lastSequence = chunk.sequence
            self.madeProgress()
            return self.afterStarted(event)
        case .finished:
            if self.finishedDelivered { return nil }
            self.finishedDelivered = true
            self.madeProgress()
            return self.afterStarted(event)
        }
    }

    /// `event`, preceded by a `started` when the lost connection never brought one.
    private mutating func afterStarted(_ event: PromptEvent) -> PromptEvent {
        guard let started = self.madeUpStarted() else { return event }
        self.pending.append(event)
        return started
    }

    private mutating func madeUpStarted() -> PromptEvent? {
        guard !self.startedDelivered, let turnID else { return nil }
        self.startedDelivered = true
        return .started(turnID: turnID)
    }

    private mutating func madeProgress() {
        self.attemptsWithoutProgress = 0
        self.lossStarted = nil
    }

    // MARK: - Re-attaching

    /// Whether `error` says the connection was lost (rather than the server ending
    /// the call with a status of its own).
    static func isConnectionLoss(_ error: SwitchboardError) -> Bool {
        error.code == .unavailable && error.message.hasPrefix("connection closed")
    }

    /// Whether `error` is the server's "turn T is ending; attach again": the attach
    /// came while the turn was passing from memory to the store, and the next attach
    /// finds it finished. A hint to retry, within the same policy.
    static func isTurnEnding(_ error: SwitchboardError) -> Bool {
        error.code == .unavailable && error.message.hasPrefix("turn ") && error.message.hasSuffix(" is ending; attach again")
    }

    /// After the current call failed with `error`: connects again and attaches after
    /// the last delivered chunk (also when `finished` was delivered and only the
    /// CallEnd was lost: the re-attach brings the turn's status), returning the new call's events (its `attached`
    /// already consumed). Throws `error` itself when it is not a lost connection,
    /// `UNAVAILABLE` when the turn was never accepted (the prompt is not re-sent),
    /// and the last failure when the policy's attempts or budget run out. An attempt
    /// is retried when it was refused before the server processed it, or when the
    /// server answered that the turn is ending (attach again).
    mutating func reattach(after error: SwitchboardError) async throws(SwitchboardError) -> PromptEventProducer.AsyncIterator {
        guard Self.isConnectionLoss(error) else { throw error }
        guard let turnID = self.turnID else {
            throw SwitchboardError(
                code: .unavailable,
                message: "\(error.message) before the server accepted the prompt; it was not sent again "
                    + "(a prompt is not safe to repeat): the session's turn history shows whether it ran",
                cause: error
            )
        }
        var lastError = error
        let started = self.lossStarted ?? ContinuousClock.now
        self.lossStarted = started
        while true {
            self.attemptsWithoutProgress += 1
            let attempt = self.attemptsWithoutProgress
            guard attempt <= self.policy.maxAttempts else { throw Self.gaveUp(lastError, turnID: turnID, attempts: attempt - 1) }
            if attempt > 1 {
                let wait = self.policy.backoff(beforeRetry: attempt - 1)
                guard ContinuousClock.now - started + wait < self.policy.totalBudget else {
                    throw Self.gaveUp(lastError, turnID: turnID, attempts: attempt - 1)
                }
                do {
                    try await Task.sleep(for: wait)
                } catch {
                    throw SwitchboardError(code: .cancelled, message: "cancelled while re-attaching to turn \(turnID)")
                }
            }
            await self.closeConnection()
            do {
                return try await self.attachOnce(turnID: turnID)
            } catch let failure {
                guard RetryPolicy.isRefusedBeforeProcessing(failure) || Self.isTurnEnding(failure), !Task.isCancelled else {
                    throw failure
                }
                lastError = failure
            }
        }
    }

    private static func gaveUp(_ error: SwitchboardError, turnID: String, attempts: Int) -> SwitchboardError {
        SwitchboardError(
            code: .unavailable,
            message: "\(error.message) (gave up re-attaching to turn \(turnID) after \(attempts) attempt\(attempts == 1 ? "" : "s"))",
            cause: error
        )
    }

    /// One attempt: a new connection, an Attach call, and its first event.
    private mutating func attachOnce(turnID: String) async throws(SwitchboardError) -> PromptEventProducer.AsyncIterator {
        var timeout: Duration?
        if let deadline = self.deadline {
            let left = deadline - ContinuousClock.now
            guard left.isPositive else {
                throw SwitchboardError(code: .deadlineExceeded, message: "deadline exceeded while re-attaching to turn \(turnID)")
            }
            timeout = left
        }
        let connection: SwitchboardClient
        do {
            connection = try await SwitchboardClient.connect(socketPath: self.client.socketPath, configuration: self.client.configuration)
        } catch let error as SwitchboardError {
            throw error
        } catch {
            throw SwitchboardError(code: .unavailable, message: "cannot connect to \(self.client.socketPath): \(error)", cause: error)
        }
        self.connection = connection
        let request = AttachRequest(sessionID: self.sessionID, turnID: turnID, afterSequence: self.lastSequence)
        let iterator = PromptStream.open(.attach(request), on: connection, timeout: timeout)
        let first: PromptEvent?
        do {
            first = try await iterator.next()
        } catch let error as SwitchboardError {
            throw error
        } catch is CancellationError {
            throw SwitchboardClient.cancelledError
        } catch {
            throw SwitchboardError(code: .unknown, message: "\(error)", cause: error)
        }
        guard case .attached(let attached)? = first else {
            throw SwitchboardError(
                code: .internal,
                message: "protocol error: an attach call began with \(first.map { "\($0)" } ?? "no event") instead of attached"
            )
        }
        if let started = try self.filter(.attached(attached)) {
            self.pending.append(started)
        }
        // Connected again: the next loss gets the whole time budget (the attempt
        // count still runs until something new is delivered).
        self.lossStarted = nil
        return iterator
    }

    /// Closes the connection of the current re-attach, if any.
    mutating func closeConnection() async {
        guard let connection = self.connection else { return }
        self.connection = nil
        await connection.close()
    }
}
