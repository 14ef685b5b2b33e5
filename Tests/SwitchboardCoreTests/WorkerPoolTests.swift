import Synchronization
@testable import SwitchboardCore
import SwitchboardProtocol
import Testing

/// A worker link that records the commands sent to it and lets a test await them.
final class RecordingLink: WorkerLink {
    private let commands = Mutex<[WorkerCommand]>([])
    let stream: AsyncStream<WorkerCommand>
    private let continuation: AsyncStream<WorkerCommand>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: WorkerCommand.self)
    }

    func send(_ command: WorkerCommand) {
        commands.withLockAnnotated { $0.append(command) }
        continuation.yield(command)
    }

    var sent: [WorkerCommand] { commands.withLockAnnotated { $0 } }

    var assignments: [TurnAssignment] {
        sent.compactMap { if case .assignment(let a) = $0 { a } else { nil } }
    }

    var cancellations: [String] {
        sent.compactMap { if case .cancellation(let id, _) = $0 { id } else { nil } }
    }

    /// Waits (bounded) until `count` assignments have been sent.
    func waitForAssignments(_ count: Int) async throws -> [TurnAssignment] {
        for _ in 0..<1000 {
            let current = assignments
            if current.count >= count { return current }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("expected \(count) assignments, got \(assignments.count)")
        return assignments
    }

    func waitForCancellations(_ count: Int) async throws -> [String] {
        for _ in 0..<1000 {
            let current = cancellations
            if current.count >= count { return current }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("expected \(count) cancellations, got \(cancellations.count)")
        return cancellations
    }
}

@Suite("Worker pool")
struct WorkerPoolTests {
    let harness = Harness()
    var workers: WorkerPools { harness.registry.workers }

    func register(_ queue: String = "q", capacity: UInt32 = 2) throws(SwitchboardError) -> (RegisteredWorker, RecordingLink) {
        let link = RecordingLink()
        let worker = try workers.register(WorkerRegister(taskQueue: queue, capacity: capacity), link: link)
        return (worker, link)
    }

    @Test("capacity 0, a malformed queue name and an unknown queue backend are clear errors")
    func registrationErrors() async {
        let zero = expectError(.invalidArgument) { () throws(SwitchboardError) in try register(capacity: 0) }
        #expect(zero?.message.contains("capacity") == true)
        expectError(.invalidArgument) { () throws(SwitchboardError) in try register("bad queue!") }
        await expectError(.invalidArgument) { () async throws(SwitchboardError) in try await harness.createSession(backend: "worker:") }
        #expect(workers.snapshot().workers.isEmpty)
    }

    @Test("a turn runs on a worker: assignment, output, finish; status counts it")
    func basicTurn() async throws {
        let (worker, link) = try register()
        try await harness.createSession("s1", backend: "worker:q", labels: [Label(key: "k", value: "v")])
        let recorder = EventRecorder()
        let task = harness.start(try harness.submit("s1", "hello"), recorder: recorder)
        let assignment = try #require(try await link.waitForAssignments(1).first)
        #expect(assignment.sessionID == "s1")
        #expect(assignment.prompt == "hello")
        #expect(assignment.sessionLabels == [Label(key: "k", value: "v")])
        #expect(assignment.deadlineMs > 0)
        #expect(workers.snapshot().workers.first?.inFlight == 1)
        try worker.output(turnID: assignment.turnID, data: Array("HEL".utf8))
        try worker.output(turnID: assignment.turnID, data: Array("LO".utf8))
        try worker.finish(turnID: assignment.turnID, stopReason: "end_turn")
        let outcome = await task.value
        #expect(outcome.code == .ok)
        #expect(outcome.finished.stopReason == "end_turn")
        #expect(recorder.text == "HELLO")
        let info = try #require(workers.snapshot().workers.first)
        #expect(info.inFlight == 0)
        #expect(info.turnsServed == 1)
        #expect(info.capacity == 2)
    }

    @Test("dispatch: least loaded first, then each session goes back to its worker")
    func dispatchAndAffinity() async throws {
        let (w1, l1) = try register()
        let (w2, l2) = try register()
        let sessions = ["a", "b", "c", "d"]
        for id in sessions { try await harness.createSession(id, backend: "worker:q") }
        var tasks: [Task<TurnOutcome, Never>] = []
        for id in sessions { tasks.append(harness.start(try harness.submit(id, "p-\(id)"))) }
        let a1 = try await l1.waitForAssignments(2)
        let a2 = try await l2.waitForAssignments(2)
        #expect(a1.count == 2 && a2.count == 2)
        for a in a1 { try w1.finish(turnID: a.turnID, stopReason: "end_turn") }
        for a in a2 { try w2.finish(turnID: a.turnID, stopReason: "end_turn") }
        for task in tasks { #expect(await task.value.code == .ok) }

        // Second round, one at a time: each session returns to the worker it had.
        for id in sessions {
            let expected = harness.registry.workers.pool(named: "q").affinity(of: id)
            let (worker, link) = expected == w1.id ? (w1, l1) : (w2, l2)
            let before = link.assignments.count
            let task = harness.start(try harness.submit(id, "again"))
            let assignments = try await link.waitForAssignments(before + 1)
            let last = try #require(assignments.last)
            #expect(last.sessionID == id)
            try worker.finish(turnID: last.turnID, stopReason: "end_turn")
            #expect(await task.value.code == .ok)
        }
        #expect(l1.assignments.count == 4)
        #expect(l2.assignments.count == 4)
    }

    @Test("no worker: fail policy answers UNAVAILABLE at once; wait policy waits and shows in status")
    func noWorker() async throws {
        try await harness.createSession("f", backend: "worker:q", settings: SessionSettings(whenNoWorker: .fail))
        let failed = await harness.start(try harness.submit("f", "x")).value
        #expect(failed.code == .unavailable)

        try await harness.createSession("w", backend: "worker:q")
        let task = harness.start(try harness.submit("w", "x"))
        for _ in 0..<1000 where workers.snapshot().queues.first?.waitingTurns != 1 {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(workers.snapshot().queues == [WorkerQueueInfo(taskQueue: "q", workers: 0, waitingTurns: 1)])
        let (worker, link) = try register()
        let assignment = try #require(try await link.waitForAssignments(1).first)
        try worker.finish(turnID: assignment.turnID, stopReason: "done")
        #expect(await task.value.code == .ok)
        #expect(workers.snapshot().queues == [WorkerQueueInfo(taskQueue: "q", workers: 1, waitingTurns: 0)])
    }

    @Test("a waiting turn is bounded by its deadline")
    func waitingDeadline() async throws {
        try await harness.createSession("w", backend: "worker:q", settings: SessionSettings(turnDeadlineMs: 100))
        let outcome = await harness.start(try harness.submit("w", "x")).value
        #expect(outcome.code == .deadlineExceeded)
        #expect(workers.snapshot().queues.isEmpty)
    }

    @Test("a worker that goes away fails its turns UNAVAILABLE; the session moves to another worker")
    func workerGone() async throws {
        let (w1, l1) = try register()
        try await harness.createSession("s", backend: "worker:q")
        let task = harness.start(try harness.submit("s", "x"))
        _ = try await l1.waitForAssignments(1)
        let (w2, l2) = try register()
        w1.deregister(reason: "connection closed")
        let outcome = await task.value
        #expect(outcome.code == .unavailable)
        #expect(outcome.message.contains("connection closed"))
        #expect(workers.snapshot().workers.map(\.workerID) == [w2.id])

        let next = harness.start(try harness.submit("s", "y"))
        let assignment = try #require(try await l2.waitForAssignments(1).first)
        try w2.finish(turnID: assignment.turnID, stopReason: "end_turn")
        #expect(await next.value.code == .ok)
    }

    @Test("a cancelled turn reaches the worker and frees its slot; unknown turns are errors")
    func cancellation() async throws {
        let (worker, link) = try register(capacity: 1)
        try await harness.createSession("s", backend: "worker:q")
        let turn = try harness.submit("s", "x")
        let task = harness.start(turn)
        let assignment = try #require(try await link.waitForAssignments(1).first)
        turn.cancel(reason: "client went away")
        #expect(await task.value.code == .cancelled)
        #expect(try await link.waitForCancellations(1) == [assignment.turnID])
        #expect(workers.snapshot().workers.first?.inFlight == 0)
        // Late messages for the cancelled turn are ignored, not errors.
        try worker.output(turnID: assignment.turnID, data: [1])
        try worker.finish(turnID: assignment.turnID, stopReason: "late")
        let error = expectError(.invalidArgument) { () throws(SwitchboardError) in
            try worker.output(turnID: "t-nope", data: [1])
        }
        #expect(error?.message.contains("not assigned") == true)
        expectError(.invalidArgument) { () throws(SwitchboardError) in
            try worker.fail(turnID: "t-nope", code: .internal, message: "x")
        }
    }

    @Test("a worker's failure reaches the prompting client with its code")
    func failure() async throws {
        let (worker, link) = try register()
        try await harness.createSession("s", backend: "worker:q")
        let task = harness.start(try harness.submit("s", "x"))
        let assignment = try #require(try await link.waitForAssignments(1).first)
        try worker.fail(turnID: assignment.turnID, code: .resourceExhausted, message: "no memory")
        let outcome = await task.value
        #expect(outcome.code == .resourceExhausted)
        #expect(outcome.message == "no memory")
    }
}
