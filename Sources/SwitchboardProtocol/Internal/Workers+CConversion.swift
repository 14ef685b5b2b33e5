import CProtobufC
import CSwitchboardProto

typealias CWorkerMessage = Switchboard__V1__WorkerMessage
typealias CWorkerCommand = Switchboard__V1__WorkerCommand
typealias CWorkerInfo = Switchboard__V1__WorkerInfo
typealias CWorkerQueueInfo = Switchboard__V1__WorkerQueueInfo

extension NoWorkerPolicy {
    var cValue: Switchboard__V1__NoWorkerPolicy {
        Switchboard__V1__NoWorkerPolicy(rawValue: numericCast(rawValue))
    }

    /// A number this build does not know becomes `.wait`, the protocol default.
    init(cValue: Switchboard__V1__NoWorkerPolicy) {
        self = NoWorkerPolicy(rawValue: numericCast(cValue.rawValue)) ?? .wait
    }
}

extension WorkerMessage {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CWorkerMessage> {
        let c = arena.message(switchboard__v1__worker_message__init)
        switch self {
        case .register(let register):
            let value = arena.message(switchboard__v1__worker_register__init)
            value.pointee.task_queue = arena.string(register.taskQueue)
            value.pointee.capacity = register.capacity
            value.pointee.n_labels = register.labels.count
            value.pointee.labels = arena.labels(register.labels)
            value.pointee.display_name = arena.string(register.displayName)
            c.pointee.kind_case = SWITCHBOARD__V1__WORKER_MESSAGE__KIND_REGISTER
            c.pointee.register_ = value
        case .output(let turnID, let data):
            let value = arena.message(switchboard__v1__worker_output__init)
            value.pointee.turn_id = arena.string(turnID)
            value.pointee.data = arena.binary(data)
            c.pointee.kind_case = SWITCHBOARD__V1__WORKER_MESSAGE__KIND_OUTPUT
            c.pointee.output = value
        case .finished(let turnID, let stopReason):
            let value = arena.message(switchboard__v1__worker_turn_finished__init)
            value.pointee.turn_id = arena.string(turnID)
            value.pointee.stop_reason = arena.string(stopReason)
            c.pointee.kind_case = SWITCHBOARD__V1__WORKER_MESSAGE__KIND_FINISHED
            c.pointee.finished = value
        case .failed(let turnID, let code, let message):
            let value = arena.message(switchboard__v1__worker_turn_failed__init)
            value.pointee.turn_id = arena.string(turnID)
            value.pointee.code = code.rawValue
            value.pointee.message = arena.string(message)
            c.pointee.kind_case = SWITCHBOARD__V1__WORKER_MESSAGE__KIND_FAILED
            c.pointee.failed = value
        case .heartbeatAck(let nonce):
            let value = arena.message(switchboard__v1__worker_heartbeat__init)
            value.pointee.nonce = nonce
            c.pointee.kind_case = SWITCHBOARD__V1__WORKER_MESSAGE__KIND_HEARTBEAT_ACK
            c.pointee.heartbeat_ack = value
        }
        return c
    }

    /// nil when the oneof is unset or holds a kind this build does not know: the
    /// call's handler answers INVALID_ARGUMENT for the call, the connection lives on.
    static func decode(_ c: UnsafePointer<CWorkerMessage>) -> WorkerMessage? {
        switch c.pointee.kind_case {
        case SWITCHBOARD__V1__WORKER_MESSAGE__KIND_REGISTER:
            guard let value = c.pointee.register_ else { return nil }
            return .register(WorkerRegister(
                taskQueue: swiftString(value.pointee.task_queue),
                capacity: value.pointee.capacity,
                labels: swiftLabels(value.pointee.labels, count: value.pointee.n_labels),
                displayName: swiftString(value.pointee.display_name)
            ))
        case SWITCHBOARD__V1__WORKER_MESSAGE__KIND_OUTPUT:
            guard let value = c.pointee.output else { return nil }
            return .output(turnID: swiftString(value.pointee.turn_id), data: swiftBytes(value.pointee.data))
        case SWITCHBOARD__V1__WORKER_MESSAGE__KIND_FINISHED:
            guard let value = c.pointee.finished else { return nil }
            return .finished(turnID: swiftString(value.pointee.turn_id), stopReason: swiftString(value.pointee.stop_reason))
        case SWITCHBOARD__V1__WORKER_MESSAGE__KIND_FAILED:
            guard let value = c.pointee.failed else { return nil }
            return .failed(
                turnID: swiftString(value.pointee.turn_id),
                code: StatusCode(rawValue: value.pointee.code),
                message: swiftString(value.pointee.message)
            )
        case SWITCHBOARD__V1__WORKER_MESSAGE__KIND_HEARTBEAT_ACK:
            guard let value = c.pointee.heartbeat_ack else { return nil }
            return .heartbeatAck(nonce: value.pointee.nonce)
        default:
            return nil
        }
    }
}

extension WorkerCommand {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CWorkerCommand> {
        let c = arena.message(switchboard__v1__worker_command__init)
        switch self {
        case .registered(let registered):
            let value = arena.message(switchboard__v1__worker_registered__init)
            value.pointee.worker_id = arena.string(registered.workerID)
            value.pointee.heartbeat_interval_ms = registered.heartbeatIntervalMs
            value.pointee.heartbeat_timeout_ms = registered.heartbeatTimeoutMs
            c.pointee.kind_case = SWITCHBOARD__V1__WORKER_COMMAND__KIND_REGISTERED
            c.pointee.registered = value
        case .assignment(let assignment):
            let value = arena.message(switchboard__v1__turn_assignment__init)
            value.pointee.turn_id = arena.string(assignment.turnID)
            value.pointee.session_id = arena.string(assignment.sessionID)
            value.pointee.n_session_labels = assignment.sessionLabels.count
            value.pointee.session_labels = arena.labels(assignment.sessionLabels)
            value.pointee.prompt = arena.string(assignment.prompt)
            value.pointee.deadline_ms = assignment.deadlineMs
            c.pointee.kind_case = SWITCHBOARD__V1__WORKER_COMMAND__KIND_ASSIGNMENT
            c.pointee.assignment = value
        case .cancellation(let turnID, let reason):
            let value = arena.message(switchboard__v1__turn_cancellation__init)
            value.pointee.turn_id = arena.string(turnID)
            value.pointee.reason = arena.string(reason)
            c.pointee.kind_case = SWITCHBOARD__V1__WORKER_COMMAND__KIND_CANCELLATION
            c.pointee.cancellation = value
        case .heartbeat(let nonce):
            let value = arena.message(switchboard__v1__worker_heartbeat__init)
            value.pointee.nonce = nonce
            c.pointee.kind_case = SWITCHBOARD__V1__WORKER_COMMAND__KIND_HEARTBEAT
            c.pointee.heartbeat = value
        }
        return c
    }

    /// nil when the oneof is unset or holds a kind this build does not know.
    static func decode(_ c: UnsafePointer<CWorkerCommand>) -> WorkerCommand? {
        switch c.pointee.kind_case {
        case SWITCHBOARD__V1__WORKER_COMMAND__KIND_REGISTERED:
            guard let value = c.pointee.registered else { return nil }
            return .registered(WorkerRegistered(
                workerID: swiftString(value.pointee.worker_id),
                heartbeatIntervalMs: value.pointee.heartbeat_interval_ms,
                heartbeatTimeoutMs: value.pointee.heartbeat_timeout_ms
            ))
        case SWITCHBOARD__V1__WORKER_COMMAND__KIND_ASSIGNMENT:
            guard let value = c.pointee.assignment else { return nil }
            return .assignment(TurnAssignment(
                turnID: swiftString(value.pointee.turn_id),
                sessionID: swiftString(value.pointee.session_id),
                sessionLabels: swiftLabels(value.pointee.session_labels, count: value.pointee.n_session_labels),
                prompt: swiftString(value.pointee.prompt),
                deadlineMs: value.pointee.deadline_ms
            ))
        case SWITCHBOARD__V1__WORKER_COMMAND__KIND_CANCELLATION:
            guard let value = c.pointee.cancellation else { return nil }
            return .cancellation(turnID: swiftString(value.pointee.turn_id), reason: swiftString(value.pointee.reason))
        case SWITCHBOARD__V1__WORKER_COMMAND__KIND_HEARTBEAT:
            guard let value = c.pointee.heartbeat else { return nil }
            return .heartbeat(nonce: value.pointee.nonce)
        default:
            return nil
        }
    }
}

extension WorkerInfo {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CWorkerInfo> {
        let c = arena.message(switchboard__v1__worker_info__init)
        c.pointee.worker_id = arena.string(workerID)
        c.pointee.task_queue = arena.string(taskQueue)
        c.pointee.display_name = arena.string(displayName)
        c.pointee.n_labels = labels.count
        c.pointee.labels = arena.labels(labels)
        c.pointee.capacity = capacity
        c.pointee.in_flight = inFlight
        c.pointee.turns_served = turnsServed
        c.pointee.connected_at_ms = connectedAtMs
        return c
    }

    init(cMessage c: UnsafePointer<CWorkerInfo>) {
        self.init(
            workerID: swiftString(c.pointee.worker_id),
            taskQueue: swiftString(c.pointee.task_queue),
            displayName: swiftString(c.pointee.display_name),
            labels: swiftLabels(c.pointee.labels, count: c.pointee.n_labels),
            capacity: c.pointee.capacity,
            inFlight: c.pointee.in_flight,
            turnsServed: c.pointee.turns_served,
            connectedAtMs: c.pointee.connected_at_ms
        )
    }
}

extension WorkerQueueInfo {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CWorkerQueueInfo> {
        let c = arena.message(switchboard__v1__worker_queue_info__init)
        c.pointee.task_queue = arena.string(taskQueue)
        c.pointee.workers = workers
        c.pointee.waiting_turns = waitingTurns
        return c
    }

    init(cMessage c: UnsafePointer<CWorkerQueueInfo>) {
        self.init(
            taskQueue: swiftString(c.pointee.task_queue),
            workers: c.pointee.workers,
            waitingTurns: c.pointee.waiting_turns
        )
    }
}
