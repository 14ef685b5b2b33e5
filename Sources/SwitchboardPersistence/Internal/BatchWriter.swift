#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import GRDB
import Logging
import Synchronization
import SwitchboardCore
import SwitchboardProtocol

/// Collects recorded changes in memory and writes them from one dedicated
/// thread, one transaction per batch.
///
/// Why a thread of its own: GRDB's synchronous `write` blocks its caller until
/// the transaction commits (and a create or delete waits for an fsync), which
/// must never happen on an event loop or a cooperative-pool thread. Record
/// calls only append under `state`'s lock and, when the batch becomes due,
/// signal the writer.
///
/// A batch is due when it holds `maxChunks` chunks or `maxBytes` bytes, when its
/// oldest operation has waited `interval`, or at once when someone waits for it
/// (create, delete, flush, close).
///
/// Compaction: when a batch that deleted rows (a session, or turns and output
/// by retention) leaves more than ``compactionSlackPages`` free pages, the
/// writer gives them back to the file system with `PRAGMA incremental_vacuum`,
/// ``compactionStepPages`` at a time, each step its own short transaction taken
/// only when no batch is due, so recording is never held up by more than one
/// step. The slack stays for later writes to reuse: retention deletes a little
/// after most turns, and giving back every page would cost a transaction each.
///
/// Backpressure: recording never waits, but ``waitForRoom()`` suspends its
/// caller while more than `backlogLimitBytes` of output are recorded and not
/// yet committed (being collected or being written). The waiters are resumed,
/// all at once, when a commit brings the backlog back to the limit or the
/// writer closes; a cancelled waiter leaves at once. So a disk slower than the
/// producers slows them instead of growing the backlog until memory runs out.
///
/// A failed commit (a full disk) keeps its batch, minus creates and deletes
/// whose callers get the error, and is retried, with a back-off of at most
/// ``retryIntervalMaxMs``: nothing recorded is dropped while the process lives.
/// Until a commit succeeds again the writer publishes ``writeFailure``, fails
/// the flushes the batch covered and the producers waiting for room (they would
/// otherwise wait for a disk that may never come back), and, when nothing is
/// left to retry, probes the database at the same pace; the first commit that
/// succeeds clears it.
final class BatchWriter: Sendable {
    struct Parameters: Sendable {
        var maxChunks: Int
        var maxBytes: Int
        var interval: Duration
        var backlogWarningBytes: Int
        /// Above this many uncommitted output bytes, `waitForRoom` suspends.
        var backlogLimitBytes: Int
        /// Test hook: runs on the writer thread before each batch is written
        /// (a test blocks it there to play a slow disk).
        var beforeWrite: (@Sendable () -> Void)?
    }

    private enum WaitMode { case none, untilSignalled, timed }

    /// A turn being recorded: its position and the last output sequence recorded.
    private struct LiveTurn {
        var position: UInt64
        var lastSequence: UInt64?
    }

    private struct State: ~Copyable {
        /// Recorded, not yet taken by the writer.
        var pending: [PendingOperation] = []
        var pendingChunks = 0
        var pendingBytes = 0
        var oldestPendingNs: UInt64 = 0
        /// Taken by the writer, not yet committed (still visible to reads).
        var inFlight: [PendingOperation] = []
        /// Output bytes in `inFlight`.
        var inFlightBytes = 0
        /// Operations recorded and operations resolved (committed or failed).
        var enqueued: UInt64 = 0
        var resolved: UInt64 = 0
        var urgent = false
        var waitMode = WaitMode.none
        var flushWaiters: [(target: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var tickets: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var nextTicket: UInt64 = 1
        /// Turns accepted in this process and not finished yet.
        var liveTurns: [TurnKey: LiveTurn] = [:]
        var lastPosition: UInt64
        var closing = false
        var exited = false
        var exitWaiter: CheckedContinuation<Void, Never>?
        var backlogWarned = false
        /// Callers of `waitForRoom` suspended while the backlog is over its limit.
        var roomWaiters: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var nextRoomWaiter: UInt64 = 1
        /// Pages were freed (or may have been): compact before going idle.
        var compactionRequested = false
        /// Set by a failed commit, cleared by the next one that succeeds.
        var writeFailure: StoreWriteFailure?
        /// While failing with nothing to retry: when to probe the database next.
        var nextProbeNs: UInt64 = 0

        init(lastPosition: UInt64) {
            self.lastPosition = lastPosition
        }
    }

    private let pool: DatabasePool
    private let logger: Logger
    private let parameters: Parameters
    /// The database has `auto_vacuum = INCREMENTAL` (otherwise
    /// `incremental_vacuum` does nothing and compaction is skipped).
    private let compacts: Bool
    private let state: Mutex<State>
    private let wakeUp = DispatchSemaphore(value: 0)
    /// The backlog is over its limit (written under `state`'s lock, read
    /// without it): `waitForRoom`'s fast path, taken before every chunk.
    private let isFull = Atomic<Bool>(false)

    /// Pages one compaction step gives back at most (4 MiB at SQLite's default
    /// 4 KiB page size): bounded work between two batches.
    static let compactionStepPages = 1024
    /// Free pages left for reuse (1 MiB at 4 KiB pages).
    static let compactionSlackPages = 256
    /// The longest pause between two attempts to write while the database
    /// refuses writes: how soon the store notices that space came back.
    static let retryIntervalMaxMs = 1000

    init(pool: DatabasePool, lastPosition: UInt64, compacts: Bool, parameters: Parameters, logger: Logger) {
        self.pool = pool
        self.compacts = compacts
        self.parameters = parameters
        self.logger = logger
        self.state = Mutex(State(lastPosition: lastPosition))
    }

    /// Starts the writer thread.
    func start() throws(SwitchboardError) {
        if let error = DedicatedThread.start({ [self] in run() }) {
            throw SwitchboardError(code: .internal, message: "cannot start the store's writer thread (error \(error))")
        }
    }

    // MARK: - Recording (any thread, never blocks on the database)

    /// Appends one operation; `prepare` runs under the lock (assigning positions,
    /// tracking live turns) and may refuse by returning nil.
    /// Returns false when refused (closed, or `prepare` said no).
    @discardableResult
    private func enqueue(urgent: Bool = false, _ prepare: (inout State) -> PendingOperation?) -> Bool {
        let (accepted, signal) = state.withLockAnnotated { (state: inout State) -> (Bool, Bool) in
            if state.closing { return (false, false) }
            guard let operation = prepare(&state) else { return (false, false) }
            if state.pending.isEmpty {
                state.oldestPendingNs = DispatchTime.now().uptimeNanoseconds
            }
            state.pending.append(operation)
            state.enqueued += 1
            if case .output(_, _, let chunk) = operation {
                state.pendingChunks += 1
                state.pendingBytes += chunk.data.count
                // Only output raises the backlog, so only output can fill it.
                if backlog(state) > parameters.backlogLimitBytes { isFull.store(true, ordering: .releasing) }
            }
            if urgent { state.urgent = true }
            if backlog(state) > parameters.backlogWarningBytes, !state.backlogWarned {
                state.backlogWarned = true
                logger.warning("session store writer is behind: more than \(parameters.backlogWarningBytes) bytes of output wait to be written; output producers wait above \(parameters.backlogLimitBytes)")
            }
            return (true, wakeNeeded(&state))
        }
        if signal { wakeUp.signal() }
        return accepted
    }

    /// Whether the writer must be woken now (it sleeps until signalled, or the
    /// batch just became due while it sleeps on a timer).
    private func wakeNeeded(_ state: inout State) -> Bool {
        switch state.waitMode {
        case .none:
            return false
        case .untilSignalled:
            state.waitMode = .none
            return true
        case .timed:
            if state.urgent || state.pendingChunks >= parameters.maxChunks || state.pendingBytes >= parameters.maxBytes {
                state.waitMode = .none
                return true
            }
            return false
        }
    }

    /// Output bytes recorded and not yet committed.
    private func backlog(_ state: borrowing State) -> Int {
        state.pendingBytes + state.inFlightBytes
    }

    func recordActivity(sessionID: String, atMs: UInt64) {
        enqueue { _ in .activity(sessionID: sessionID, atMs: atMs) }
    }

    func recordAccepted(_ turn: StoredTurn) {
        enqueue { state in
            let key = TurnKey(sessionID: turn.sessionID, turnID: turn.turnID)
            guard state.liveTurns[key] == nil else { return nil }
            state.lastPosition += 1
            let position = state.lastPosition
            if turn.state != .finished { state.liveTurns[key] = LiveTurn(position: position) }
            return .accepted(turn, position: position)
        }
    }

    func recordStarted(_ key: TurnKey, atMs: UInt64) {
        enqueue { state in
            guard let live = state.liveTurns[key] else { return self.unknown(key, "start") }
            return .started(key, position: live.position, atMs: atMs)
        }
    }

    func recordOutput(_ key: TurnKey, chunk: OutputChunk) {
        enqueue { state in
            // One hash lookup per chunk: this runs for every chunk of every stream.
            guard let index = state.liveTurns.index(forKey: key) else { return self.unknown(key, "output") }
            let live = state.liveTurns.values[index]
            // Stored segments rely on increasing sequences (see OutputSegment).
            if let last = live.lastSequence, chunk.sequence <= last {
                self.logger.warning("session store: output \(chunk.sequence) of turn \(key.turnID) of session \(key.sessionID) is not after \(last); ignored")
                return nil
            }
            state.liveTurns.values[index].lastSequence = chunk.sequence
            return .output(key, position: live.position, chunk: chunk)
        }
    }

    func recordFinished(_ key: TurnKey, ending: StoredTurnEnding) {
        enqueue { state in
            guard let live = state.liveTurns.removeValue(forKey: key) else { return self.unknown(key, "end") }
            return .finished(key, position: live.position, ending: ending)
        }
    }

    /// Expected after `deleteSession` (a cancelled turn of the closed session
    /// ends later) and for turns the store never saw: nothing to record.
    private func unknown(_ key: TurnKey, _ what: String) -> PendingOperation? {
        logger.debug("session store: \(what) of unknown turn \(key.turnID) of session \(key.sessionID) ignored")
        return nil
    }

    // MARK: - Waiting for the disk

    /// Appends a create or delete and waits until it is committed (FULL sync).
    func writeDurably(_ make: @escaping @Sendable (UInt64) -> PendingOperation) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let accepted = enqueue(urgent: true) { state in
                let ticket = state.nextTicket
                state.nextTicket += 1
                let operation = make(ticket)
                if case .deleteSession(let id, _) = operation {
                    state.liveTurns = state.liveTurns.filter { $0.key.sessionID != id }
                }
                state.tickets[ticket] = continuation
                return operation
            }
            // Refused only once closing, before the continuation was stored.
            if !accepted { continuation.resume(throwing: Self.closedError) }
        }
    }

    /// Waits until everything recorded before the call is committed; throws
    /// UNAVAILABLE when the batch holding it failed to commit (it is retried,
    /// but this caller is told now). Makes the batch due at once: callers that
    /// arrive while a commit runs share the next one (group commit).
    func flush() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let signal = state.withLockAnnotated { (state: inout State) -> Bool? in
                if state.resolved >= state.enqueued { return nil }
                state.flushWaiters.append((state.enqueued, continuation))
                state.urgent = true
                return wakeNeeded(&state)
            }
            switch signal {
            case nil: continuation.resume()
            case true?: wakeUp.signal()
            case false?: break
            }
        }
    }

    /// Writes what is pending, stops accepting records and ends the thread.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (exited, waiters) = state.withLockAnnotated { state in
                state.closing = true
                state.urgent = true
                // Producers stop waiting at once (later records are refused
                // anyway), even while a slow commit holds the writer.
                let waiters = roomMade(&state)
                if state.exited { return (true, waiters) }
                state.exitWaiter = continuation
                state.waitMode = .none
                return (false, waiters)
            }
            for waiter in waiters { waiter.resume() }
            if exited { continuation.resume() } else { wakeUp.signal() }
        }
    }

    static let closedError = SwitchboardError(code: .failedPrecondition, message: "the session store is closed")

    // MARK: - Backpressure

    /// Returns once the backlog of uncommitted output is at most
    /// `backlogLimitBytes`, the writer is closing, or the calling task is
    /// cancelled. Throws UNAVAILABLE when the backlog is over the limit and the
    /// database refuses writes (at once, or when a commit fails while it waits):
    /// room may not come back. Never blocks a thread.
    func waitForRoom() async throws {
        guard isFull.load(ordering: .acquiring) else { return }
        let id = state.withLockAnnotated { state in
            defer { state.nextRoomWaiter += 1 }
            return state.nextRoomWaiter
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let failure = state.withLockAnnotated { state -> StoreWriteFailure?? in
                    // Rechecked under the lock that every change of the backlog
                    // takes, so a commit cannot slip between check and wait. A
                    // cancellation before this point finds no waiter to remove:
                    // `Task.isCancelled` is already set then.
                    guard !state.closing, backlog(state) > parameters.backlogLimitBytes, !Task.isCancelled else { return .some(nil) }
                    if let failure = state.writeFailure { return .some(failure) }
                    state.roomWaiters[id] = continuation
                    return .none
                }
                switch failure {
                case .none: break
                case .some(nil): continuation.resume()
                case .some(let failure?): continuation.resume(throwing: Self.noRoomError(failure))
                }
            }
        } onCancel: {
            state.withLockAnnotated { $0.roomWaiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Why a producer waiting for room is sent away.
    private static func noRoomError(_ failure: StoreWriteFailure) -> SwitchboardError {
        SwitchboardError(code: .unavailable, message: "the turn's output could not be stored: \(failure.message)")
    }

    /// Why the database refuses writes, since when; nil while commits succeed.
    var writeFailure: StoreWriteFailure? {
        state.withLockAnnotated { $0.writeFailure }
    }

    /// Waiters to resume now that the backlog may have dropped (or the writer
    /// closes); clears `isFull` with them. Called under the lock; the caller
    /// resumes them after unlocking. Each waiter leaves the map exactly once
    /// (here or in its cancellation handler), so none is resumed twice.
    private func roomMade(_ state: inout State) -> [CheckedContinuation<Void, any Error>] {
        guard state.closing || backlog(state) <= parameters.backlogLimitBytes else { return [] }
        isFull.store(false, ordering: .releasing)
        guard !state.roomWaiters.isEmpty else { return [] }
        defer { state.roomWaiters = [:] }
        return Array(state.roomWaiters.values)
    }

    /// Output bytes recorded and not yet committed, and callers of
    /// `waitForRoom` suspended (tests).
    var backlogStatus: (bytes: Int, waiters: Int) {
        state.withLockAnnotated { (backlog($0), $0.roomWaiters.count) }
    }

    /// Asks the writer to give free pages back (after `load`, whose retention
    /// and earlier runs may have left some).
    func requestCompaction() {
        guard compacts else { return }
        let signal = state.withLockAnnotated { state in
            state.compactionRequested = true
            return wakeNeeded(&state)
        }
        if signal { wakeUp.signal() }
    }

    // MARK: - Reads

    /// The not-yet-committed operations of one session, in order. Taken before
    /// reading the database so that every operation is either here or already
    /// committed when the read transaction starts.
    func pendingView(sessionID: String) -> PendingView {
        state.withLockAnnotated { state in
            var view = PendingView()
            for operation in state.inFlight where operation.sessionID == sessionID {
                view.operations.append(operation)
            }
            for operation in state.pending where operation.sessionID == sessionID {
                view.operations.append(operation)
            }
            return view
        }
    }

    /// Whether any record of the turn still waits to be committed (being
    /// written or collected).
    func hasPending(sessionID: String, turnID: String) -> Bool {
        state.withLockAnnotated { state in
            let matches = { (operation: PendingOperation) in
                operation.sessionID == sessionID && operation.turnID == turnID
            }
            return state.inFlight.contains(where: matches) || state.pending.contains(where: matches)
        }
    }

    // MARK: - The writer thread

    private enum Step {
        case write([PendingOperation])
        case compact
        case probe
        case wait(timeoutNs: UInt64?)
        case exit(CheckedContinuation<Void, Never>?)
    }

    private func run() {
        var failures = 0
        while true {
            let step = state.withLockAnnotated { (state: inout State) -> Step in
                if state.pending.isEmpty {
                    if state.closing {
                        state.exited = true
                        let waiter = state.exitWaiter
                        state.exitWaiter = nil
                        return .exit(waiter)
                    }
                    if state.writeFailure != nil {
                        // Nothing to retry: probe, so that the store notices by
                        // itself when the disk takes writes again.
                        let now = DispatchTime.now().uptimeNanoseconds
                        if now >= state.nextProbeNs { return .probe }
                        state.waitMode = .untilSignalled
                        return .wait(timeoutNs: state.nextProbeNs - now)
                    }
                    if state.compactionRequested {
                        state.compactionRequested = false
                        return .compact
                    }
                    state.urgent = false
                    state.waitMode = .untilSignalled
                    return .wait(timeoutNs: nil)
                }
                let age = DispatchTime.now().uptimeNanoseconds &- state.oldestPendingNs
                let interval = UInt64(parameters.interval.components.seconds) * 1_000_000_000
                    + UInt64(parameters.interval.components.attoseconds / 1_000_000_000)
                let due = state.urgent || state.closing || age >= interval
                    || state.pendingChunks >= parameters.maxChunks || state.pendingBytes >= parameters.maxBytes
                if !due {
                    if state.compactionRequested {
                        state.compactionRequested = false
                        return .compact
                    }
                    state.waitMode = .timed
                    return .wait(timeoutNs: interval - age)
                }
                state.inFlight = state.pending
                state.inFlightBytes = state.pendingBytes
                state.pending = []
                state.pendingChunks = 0
                state.pendingBytes = 0
                state.urgent = false
                state.waitMode = .none
                state.backlogWarned = false
                return .write(state.inFlight)
            }
            switch step {
            case .exit(let waiter):
                waiter?.resume()
                return
            case .compact:
                compactStep()
            case .probe:
                probe()
            case .wait(let timeoutNs):
                if let timeoutNs {
                    _ = wakeUp.wait(timeout: .now() + .nanoseconds(Int(min(timeoutNs, UInt64(Int.max)))))
                } else {
                    wakeUp.wait()
                }
            case .write(let batch):
                parameters.beforeWrite?()
                if write(batch) {
                    failures = 0
                } else {
                    failures += 1
                    // Back off before retrying; a closing store gives up after a few tries.
                    _ = wakeUp.wait(timeout: .now() + .milliseconds(min(50 * failures, Self.retryIntervalMaxMs)))
                    if failures >= 3 { dropIfClosing() }
                }
            }
        }
    }

    /// Writes one batch in one transaction. Returns false when it failed (the
    /// batch, minus creates and deletes whose callers got the error, goes back
    /// to the front of the queue).
    private func write(_ batch: [PendingOperation]) -> Bool {
        let durable = batch.contains { $0.ticket != nil }
        var applied = BatchApplier.Applied()
        var freePages = 0
        do {
            try pool.writeWithoutTransaction { db in
                if durable { try db.execute(sql: "PRAGMA synchronous = FULL") }
                defer { if durable { try? db.execute(sql: "PRAGMA synchronous = NORMAL") } }
                try db.inTransaction {
                    applied = try BatchApplier(db: db, logger: logger).apply(batch)
                    if applied.deletedRows && compacts {
                        freePages = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                    }
                    return .commit
                }
            }
        } catch {
            let message = Self.describe(error)
            let (waiters, tickets, producers, first, current) = state.withLockAnnotated { state in
                var kept: [PendingOperation] = []
                var failedTickets: [CheckedContinuation<Void, any Error>] = []
                for operation in state.inFlight {
                    if let ticket = operation.ticket {
                        if let continuation = state.tickets.removeValue(forKey: ticket) { failedTickets.append(continuation) }
                        state.resolved += 1
                    } else {
                        kept.append(operation)
                    }
                }
                state.pending = kept + state.pending
                state.pendingChunks = state.pending.reduce(0) { if case .output = $1 { $0 + 1 } else { $0 } }
                state.pendingBytes = state.pending.reduce(0) {
                    if case .output(_, _, let chunk) = $1 { $0 + chunk.data.count } else { $0 }
                }
                state.inFlight = []
                state.inFlightBytes = 0
                let limit = state.resolved + UInt64(kept.count)
                let failed = state.flushWaiters.filter { $0.target <= limit }.map(\.continuation)
                state.flushWaiters.removeAll { $0.target <= limit }
                let first = state.writeFailure == nil
                let current = state.writeFailure ?? StoreWriteFailure(message: message, sinceMs: EpochMilliseconds.now())
                state.writeFailure = current
                // A probe comes only after a pause (the batch, if any, is retried sooner).
                state.nextProbeNs = DispatchTime.now().uptimeNanoseconds + UInt64(Self.retryIntervalMaxMs) * 1_000_000
                // Producers waiting for room would wait for a disk that may not
                // come back: they are told now (their turns end UNAVAILABLE).
                let producers = Array(state.roomWaiters.values)
                state.roomWaiters = [:]
                return (failed, failedTickets, producers, first, current)
            }
            if first {
                logger.error("session store: writing a batch of \(batch.count) operations failed: \(error); new sessions and prompts are refused until a retry succeeds")
            } else {
                logger.debug("session store: retrying a batch of \(batch.count) operations failed again: \(error)")
            }
            let failure = SwitchboardError(code: .unavailable, message: "the session store could not write to its database: \(message)", cause: error)
            for waiter in waiters { waiter.resume(throwing: failure) }
            for ticket in tickets { ticket.resume(throwing: failure) }
            for producer in producers { producer.resume(throwing: Self.noRoomError(current)) }
            return false
        }
        let (waiters, tickets, room, recovered) = state.withLockAnnotated { state in
            let recovered = state.writeFailure
            state.writeFailure = nil
            state.resolved += UInt64(state.inFlight.count)
            state.inFlight = []
            state.inFlightBytes = 0
            let room = roomMade(&state)
            if freePages > Self.compactionSlackPages { state.compactionRequested = true }
            let resolved = state.resolved
            let done = state.flushWaiters.filter { $0.target <= resolved }.map(\.continuation)
            state.flushWaiters.removeAll { $0.target <= resolved }
            var finished: [(CheckedContinuation<Void, any Error>, (any Error)?)] = []
            for (ticket, result) in applied.tickets {
                if let continuation = state.tickets.removeValue(forKey: ticket) { finished.append((continuation, result)) }
            }
            return (done, finished, room, recovered)
        }
        if let recovered { logRecovery(recovered) }
        for waiter in room { waiter.resume() }
        for waiter in waiters { waiter.resume() }
        for (continuation, error) in tickets {
            if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        }
        return true
    }

    /// One bounded compaction step: gives back up to ``compactionStepPages``
    /// of the free pages above the slack (SQLite moves pages from the end of
    /// the file into free ones and truncates it; in WAL mode the file shrinks
    /// at the next checkpoint). Asks for another step while more than the slack
    /// remains and the last step helped.
    private func compactStep() {
        do {
            let (before, after) = try pool.writeWithoutTransaction { db -> (Int, Int) in
                let before = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                let excess = min(before - Self.compactionSlackPages, Self.compactionStepPages)
                guard excess > 0 else { return (before, before) }
                try db.execute(sql: "PRAGMA incremental_vacuum(\(excess))")
                return (before, try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0)
            }
            if after > Self.compactionSlackPages && after < before {
                state.withLockAnnotated { $0.compactionRequested = true }
            }
        } catch {
            logger.warning("session store: compaction step failed: \(error)")
        }
    }

    /// Free space a probe must find before it calls the store writable again. A
    /// one-page write alone can succeed on a full disk (a reset WAL is reused in
    /// place), which would flip health back to SERVING until the next real batch
    /// fails; so the probe first reserves this much in a scratch file.
    static let probeReserveBytes = 256 * 1024

    /// Whether the database's file system has ``probeReserveBytes`` free: a
    /// scratch file next to the database is given that much (`posix_fallocate`),
    /// then removed. A file system without fallocate is given the benefit of
    /// the doubt (the write that follows still has to succeed).
    private func diskHasRoom() -> Bool {
        let path = pool.path + "-probe"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer {
            Glibc.close(fd)
            unlink(path)
        }
        let result = posix_fallocate(fd, 0, off_t(Self.probeReserveBytes))
        return result == 0 || result == EOPNOTSUPP || result == EINVAL
    }

    /// While the database refuses writes and nothing waits to be retried: room
    /// on the disk (``diskHasRoom()``), then one small write transaction
    /// (rewriting the schema's `user_version`, a page into the WAL); success
    /// clears ``writeFailure``.
    private func probe() {
        guard diskHasRoom() else {
            logger.debug("session store: probe found less than \(Self.probeReserveBytes) bytes free")
            state.withLockAnnotated { state in
                state.nextProbeNs = DispatchTime.now().uptimeNanoseconds
                    + UInt64(Self.retryIntervalMaxMs) * 1_000_000
            }
            return
        }
        do {
            try pool.writeWithoutTransaction { db in
                try db.inTransaction {
                    let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
                    try db.execute(sql: "PRAGMA user_version = \(version)")
                    return .commit
                }
            }
        } catch {
            logger.debug("session store: probe write failed: \(error)")
            state.withLockAnnotated { state in
                state.nextProbeNs = DispatchTime.now().uptimeNanoseconds
                    + UInt64(Self.retryIntervalMaxMs) * 1_000_000
            }
            return
        }
        let recovered = state.withLockAnnotated { state in
            defer { state.writeFailure = nil }
            return state.writeFailure
        }
        if let recovered { logRecovery(recovered) }
    }

    private func logRecovery(_ failure: StoreWriteFailure) {
        let seconds = (EpochMilliseconds.now() &- failure.sinceMs) / 1000
        logger.notice("session store: writes succeed again after \(seconds) s of \"\(failure.message)\"; sessions and prompts are accepted again")
    }

    /// SQLite's own words for a failed write ("database or disk is full"),
    /// without GRDB's SQL text around them.
    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return error.message ?? "\(error.resultCode)"
        }
        return "\(error)"
    }

    /// A closing store whose writes keep failing gives up, loudly: the
    /// operations it could not write are logged and their waiters fail.
    private func dropIfClosing() {
        let waiters = state.withLockAnnotated { state -> [CheckedContinuation<Void, any Error>] in
            guard state.closing, !state.pending.isEmpty else { return [] }
            // No turn whose caller was told OK is among them: a turn's OK waits
            // for the commit of its records (see ``flush()``).
            logger.critical("session store: giving up on \(state.pending.count) operations that could not be written before closing (\(state.writeFailure?.message ?? "write failed")); turns whose callers were told OK are not among them, they were committed first")
            state.resolved += UInt64(state.pending.count)
            state.pending = []
            state.pendingChunks = 0
            state.pendingBytes = 0
            var waiters = state.flushWaiters.map(\.continuation)
            state.flushWaiters = []
            waiters += state.tickets.values
            state.tickets = [:]
            return waiters
        }
        let error = SwitchboardError(code: .dataLoss, message: "the session store could not write its last changes before closing")
        for waiter in waiters { waiter.resume(throwing: error) }
    }
}
