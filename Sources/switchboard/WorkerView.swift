import SwitchboardProtocol

/// The workers part of `switchboard status`.
enum WorkerView {
    static func table(_ workers: [WorkerInfo], queues: [WorkerQueueInfo], nowMs: UInt64 = Format.nowMs()) -> String {
        var table = TextTable("WORKER", "QUEUE", "NAME", "CAPACITY", "IN FLIGHT", "TURNS SERVED", "CONNECTED")
        for worker in workers {
            table.add([
                worker.workerID,
                worker.taskQueue,
                worker.displayName.isEmpty ? "-" : worker.displayName,
                "\(worker.capacity)",
                "\(worker.inFlight)",
                "\(worker.turnsServed)",
                Format.age(sinceMs: worker.connectedAtMs, nowMs: nowMs),
            ])
        }
        var text = workers.isEmpty ? "no workers\n" : table.render()
        let waiting = queues.filter { $0.waitingTurns > 0 }
        if !waiting.isEmpty {
            var queueTable = TextTable("QUEUE", "WORKERS", "TURNS WAITING FOR A WORKER")
            for queue in waiting {
                queueTable.add([queue.taskQueue, "\(queue.workers)", "\(queue.waitingTurns)"])
            }
            text += "\n" + queueTable.render()
        }
        return text
    }
}

extension JSONOutput {
    struct WorkerInfoJSON: Encodable {
        let workerID: String
        let taskQueue: String
        let displayName: String
        let labels: [LabelJSON]
        let capacity: UInt32
        let inFlight: UInt32
        let turnsServed: UInt64
        let connectedAtMs: UInt64

        enum CodingKeys: String, CodingKey {
            case workerID = "worker_id"
            case taskQueue = "task_queue"
            case displayName = "display_name"
            case labels, capacity
            case inFlight = "in_flight"
            case turnsServed = "turns_served"
            case connectedAtMs = "connected_at_ms"
        }

        init(_ worker: WorkerInfo) {
            workerID = worker.workerID
            taskQueue = worker.taskQueue
            displayName = worker.displayName
            labels = worker.labels.map(LabelJSON.init)
            capacity = worker.capacity
            inFlight = worker.inFlight
            turnsServed = worker.turnsServed
            connectedAtMs = worker.connectedAtMs
        }
    }

    struct WorkerQueueInfoJSON: Encodable {
        let taskQueue: String
        let workers: UInt32
        let waitingTurns: UInt32

        enum CodingKeys: String, CodingKey {
            case taskQueue = "task_queue"
            case workers
            case waitingTurns = "waiting_turns"
        }

        init(_ queue: WorkerQueueInfo) {
            taskQueue = queue.taskQueue
            workers = queue.workers
            waitingTurns = queue.waitingTurns
        }
    }
}
