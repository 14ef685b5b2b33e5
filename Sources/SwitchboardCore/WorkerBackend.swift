import SwitchboardProtocol

/// The `worker:QUEUE` backend: each turn is assigned to a registered worker of the
/// queue (see ``WorkerPool``), whose output is forwarded as the turn's output.
///
/// A worker that goes away ends its turns with UNAVAILABLE; when the core ends a
/// turn (cancel, close, deadline, stall) the worker is told and its slot is free.
public struct WorkerBackend: Backend {
    public let pool: WorkerPool
    public let whenNoWorker: NoWorkerPolicy

    public init(pool: WorkerPool, whenNoWorker: NoWorkerPolicy) {
        self.pool = pool
        self.whenNoWorker = whenNoWorker
    }

    public func runTurn(_ turn: TurnRequest, output: TurnOutput) async throws -> String {
        try Task.checkCancellation()
        let workerTurn = WorkerTurn(request: turn)
        let pool = self.pool
        _ = try pool.submit(workerTurn, whenNoWorker: whenNoWorker)
        // Whatever way the turn ends, a worker paused for its backlog resumes.
        defer { workerTurn.releaseBacklog() }
        return try await withTaskCancellationHandler {
            for await event in workerTurn.events {
                switch event {
                case .assigned:
                    continue
                case .output(let data):
                    do {
                        try await output.write(data)
                        workerTurn.consumed(data.count)
                    } catch {
                        pool.withdraw(workerTurn, reason: "the prompting client went away")
                        throw error
                    }
                case .finished(let reason):
                    return reason
                case .failed(let error):
                    throw error
                }
            }
            // The stream ends without a result only when the turn was withdrawn.
            throw CancellationError()
        } onCancel: {
            pool.withdraw(workerTurn, reason: "turn cancelled (client cancelled or went away, session closed, or deadline)")
            workerTurn.close()
            workerTurn.releaseBacklog()
        }
    }
}
