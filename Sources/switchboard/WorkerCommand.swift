import ArgumentParser
import Foundation
import Synchronization
import SwitchboardClient
import SwitchboardCore
import SwitchboardProtocol

/// `switchboard worker`: registers with a task queue and serves each assigned turn
/// by running a command (the exec backend's machinery, in this process).
struct WorkerSubcommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Serve the turns of a task queue by running a command per turn.",
        discussion: """
            Registers with the server for --queue with --capacity concurrent turns; sessions \
            created with backend `worker:QUEUE` are then served here. Each assigned turn runs \
            COMMAND ARGS… (looked up in PATH, in its own process group) with the prompt on \
            stdin; its stdout is streamed back as the turn's output. Exit status 0 finishes \
            the turn ("exit:0"); anything else fails it (UNKNOWN with the last stderr line, \
            ABORTED for a signal). A cancelled turn's command gets SIGTERM, then SIGKILL after \
            --kill-grace. The command's environment adds SWITCHBOARD_SESSION_ID, \
            SWITCHBOARD_TURN_ID and SWITCHBOARD_WORKER_ID. One line per turn start and end \
            goes to stderr. Ctrl-C leaves the queue (in-flight turns end UNAVAILABLE).
            DURATION: \(DurationArgument.syntax).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The task queue to serve (sessions use backend worker:QUEUE).", valueName: "name"))
    var queue: String

    @Option(help: ArgumentHelp("Most turns run at once (at least 1).", valueName: "n"))
    var capacity: UInt32 = 1

    @Option(help: ArgumentHelp("Display name shown in status.", valueName: "text"))
    var name: String = ""

    @Option(
        name: .customLong("label"),
        help: ArgumentHelp("A worker label (repeatable).", valueName: "key=value"),
        transform: LabelArgument.parse
    )
    var labels: [Label] = []

    @Option(help: ArgumentHelp("Grace between SIGTERM and SIGKILL for a cancelled turn (default: 5s).", valueName: "duration"),
            transform: DurationArgument.parse)
    var killGrace: Duration = .seconds(5)

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command run per turn, after `--`.", valueName: "command"))
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("missing the command to run: switchboard worker --queue Q -- COMMAND ARGS…") }
        if capacity < 1 { throw ValidationError("--capacity must be at least 1") }
    }

    func run() async throws {
        let register = WorkerRegister(
            taskQueue: queue,
            capacity: capacity,
            labels: labels,
            displayName: name
        )
        let run = WorkerRun(socketPath: global.socketPath, register: register, command: command, killGrace: killGrace)
        let task = Task { try await run.execute() }
        let interrupt = InterruptHandler { task.cancel() }
        defer { interrupt.cancel() }
        try await task.value
    }
}

/// The part of `worker` that runs in its own (cancellable) task.
private struct WorkerRun: Sendable {
    let socketPath: String
    let register: WorkerRegister
    let command: [String]
    let killGrace: Duration

    func execute() async throws {
        let session = try await WorkerSession.connect(socketPath: socketPath, register: register)
        Console.err("worker \(session.workerID): serving queue \(register.taskQueue) with capacity \(register.capacity)\n")
        var environment = ProcessInfo.processInfo.environment
        environment["SWITCHBOARD_WORKER_ID"] = session.workerID
        let backend = ExecBackend(command: command, killGrace: killGrace, environment: environment)
        let turns = RunningTurns()
        do {
            try await withTaskCancellationHandler {
                for try await event in session.events {
                    switch event {
                    case .assignment(let assignment):
                        let inFlight = turns.start(assignment.turnID) {
                            Task { await serve(assignment, backend: backend, session: session, turns: turns) }
                        }
                        Console.err("turn \(assignment.turnID) started (session \(assignment.sessionID), in flight \(inFlight))\n")
                    case .cancellation(let turnID, let reason):
                        turns.cancel(turnID)
                        Console.err("turn \(turnID) cancelled: \(reason)\n")
                    }
                }
            } onCancel: {
                turns.cancelAll()
            }
        } catch {
            turns.cancelAll()
            if Task.isCancelled { throw SwitchboardError(code: .cancelled, message: "worker interrupted") }
            throw error
        }
        turns.cancelAll()
        if Task.isCancelled { throw SwitchboardError(code: .cancelled, message: "worker interrupted") }
    }

    private func serve(_ assignment: TurnAssignment, backend: ExecBackend, session: WorkerSession, turns: RunningTurns) async {
        let turnID = assignment.turnID
        let request = TurnRequest(
            sessionID: assignment.sessionID,
            turnID: turnID,
            prompt: assignment.prompt,
            labels: assignment.sessionLabels,
            deadline: .now + .milliseconds(Int64(clamping: assignment.deadlineMs))
        )
        let output = TurnOutput { data in try await session.output(turnID: turnID, data) }
        var result = "cancelled"
        do {
            let stopReason = try await backend.runTurn(request, output: output)
            try await session.finish(turnID: turnID, stopReason: stopReason)
            result = "finished: \(stopReason)"
        } catch let error as SwitchboardError {
            try? await session.fail(turnID: turnID, code: error.code, message: error.message)
            result = "failed: \(error.code.name): \(error.message)"
        } catch {
            // Cancelled by the server (it already ended the turn) or by Ctrl-C.
        }
        let inFlight = turns.end(turnID)
        Console.err("turn \(turnID) ended (\(result), in flight \(inFlight))\n")
    }
}

/// The worker's running turns, by id.
private final class RunningTurns: Sendable {
    private let tasks = Mutex<[String: Task<Void, Never>]>([:])

    /// Registers a turn's task; returns how many turns are in flight now.
    func start(_ turnID: String, _ makeTask: () -> Task<Void, Never>) -> Int {
        tasks.withLockAnnotated { tasks in
            tasks[turnID] = makeTask()
            return tasks.count
        }
    }

    func end(_ turnID: String) -> Int {
        tasks.withLockAnnotated { tasks in
            tasks[turnID] = nil
            return tasks.count
        }
    }

    func cancel(_ turnID: String) {
        tasks.withLockAnnotated { $0[turnID] }?.cancel()
    }

    func cancelAll() {
        for task in tasks.withLockAnnotated({ Array($0.values) }) { task.cancel() }
    }
}
