import CProtobufC
import CSwitchboardProto

typealias CPromptRequest = Switchboard__V1__PromptRequest
typealias CPromptEvent = Switchboard__V1__PromptEvent
typealias CTurnAccepted = Switchboard__V1__TurnAccepted
typealias CTurnStarted = Switchboard__V1__TurnStarted
typealias COutputChunk = Switchboard__V1__OutputChunk
typealias CTurnFinished = Switchboard__V1__TurnFinished
typealias CAttachRequest = Switchboard__V1__AttachRequest

extension BusyPolicy {
    var cValue: Switchboard__V1__BusyPolicy {
        Switchboard__V1__BusyPolicy(rawValue: numericCast(rawValue))
    }

    /// A number this build does not know becomes `.wait`, the protocol default.
    init(cValue: Switchboard__V1__BusyPolicy) {
        self = BusyPolicy(rawValue: numericCast(cValue.rawValue)) ?? .wait
    }
}

extension PromptRequest {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CPromptRequest> {
        let c = arena.message(switchboard__v1__prompt_request__init)
        c.pointee.session_id = arena.string(sessionID)
        c.pointee.prompt = arena.string(prompt)
        c.pointee.when_busy = whenBusy.cValue
        c.pointee.cancel_on_disconnect = cancelOnDisconnect ? 1 : 0
        return c
    }

    init(cMessage c: UnsafePointer<CPromptRequest>) {
        self.init(
            sessionID: swiftString(c.pointee.session_id),
            prompt: swiftString(c.pointee.prompt),
            whenBusy: BusyPolicy(cValue: c.pointee.when_busy),
            cancelOnDisconnect: c.pointee.cancel_on_disconnect != 0
        )
    }
}

extension AttachRequest {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CAttachRequest> {
        let c = arena.message(switchboard__v1__attach_request__init)
        c.pointee.session_id = arena.string(sessionID)
        c.pointee.turn_id = arena.string(turnID)
        c.pointee.after_sequence = afterSequence
        return c
    }

    init(cMessage c: UnsafePointer<CAttachRequest>) {
        self.init(
            sessionID: swiftString(c.pointee.session_id),
            turnID: swiftString(c.pointee.turn_id),
            afterSequence: c.pointee.after_sequence
        )
    }
}

extension PromptEvent {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CPromptEvent> {
        let c = arena.message(switchboard__v1__prompt_event__init)
        switch self {
        case .attached(let attached):
            let value = arena.message(switchboard__v1__turn_attached__init)
            value.pointee.turn_id = arena.string(attached.turnID)
            value.pointee.state = attached.state.cValue
            value.pointee.last_sequence = attached.lastSequence
            c.pointee.event_case = SWITCHBOARD__V1__PROMPT_EVENT__EVENT_ATTACHED
            c.pointee.attached = value
        case .accepted(let accepted):
            let value = arena.message(switchboard__v1__turn_accepted__init)
            value.pointee.turn_id = arena.string(accepted.turnID)
            value.pointee.queue_position = accepted.queuePosition
            c.pointee.event_case = SWITCHBOARD__V1__PROMPT_EVENT__EVENT_ACCEPTED
            c.pointee.accepted = value
        case .started(let turnID):
            let value = arena.message(switchboard__v1__turn_started__init)
            value.pointee.turn_id = arena.string(turnID)
            c.pointee.event_case = SWITCHBOARD__V1__PROMPT_EVENT__EVENT_STARTED
            c.pointee.started = value
        case .output(let chunk):
            let value = arena.message(switchboard__v1__output_chunk__init)
            value.pointee.sequence = chunk.sequence
            value.pointee.data = arena.binary(chunk.data)
            c.pointee.event_case = SWITCHBOARD__V1__PROMPT_EVENT__EVENT_OUTPUT
            c.pointee.output = value
        case .finished(let finished):
            let value = arena.message(switchboard__v1__turn_finished__init)
            value.pointee.turn_id = arena.string(finished.turnID)
            value.pointee.stop_reason = arena.string(finished.stopReason)
            value.pointee.chunks = finished.chunks
            value.pointee.bytes = finished.bytes
            value.pointee.duration_ms = finished.durationMs
            c.pointee.event_case = SWITCHBOARD__V1__PROMPT_EVENT__EVENT_FINISHED
            c.pointee.finished = value
        }
        return c
    }

    /// An event whose oneof is unset (or holds an event kind this build does not
    /// know) has no Swift representation: the frame is malformed for this build.
    init(cMessage c: UnsafePointer<CPromptEvent>) throws(SwitchboardError) {
        switch c.pointee.event_case {
        case SWITCHBOARD__V1__PROMPT_EVENT__EVENT_ATTACHED:
            let value = try required(c.pointee.attached, "prompt_event.attached")
            self = .attached(TurnAttached(
                turnID: swiftString(value.pointee.turn_id),
                state: TurnState(cValue: value.pointee.state),
                lastSequence: value.pointee.last_sequence
            ))
        case SWITCHBOARD__V1__PROMPT_EVENT__EVENT_ACCEPTED:
            let value = try required(c.pointee.accepted, "prompt_event.accepted")
            self = .accepted(TurnAccepted(
                turnID: swiftString(value.pointee.turn_id),
                queuePosition: value.pointee.queue_position
            ))
        case SWITCHBOARD__V1__PROMPT_EVENT__EVENT_STARTED:
            let value = try required(c.pointee.started, "prompt_event.started")
            self = .started(turnID: swiftString(value.pointee.turn_id))
        case SWITCHBOARD__V1__PROMPT_EVENT__EVENT_OUTPUT:
            let value = try required(c.pointee.output, "prompt_event.output")
            self = .output(OutputChunk(sequence: value.pointee.sequence, data: swiftBytes(value.pointee.data)))
        case SWITCHBOARD__V1__PROMPT_EVENT__EVENT_FINISHED:
            let value = try required(c.pointee.finished, "prompt_event.finished")
            self = .finished(TurnFinished(
                turnID: swiftString(value.pointee.turn_id),
                stopReason: swiftString(value.pointee.stop_reason),
                chunks: value.pointee.chunks,
                bytes: value.pointee.bytes,
                durationMs: value.pointee.duration_ms
            ))
        default:
            throw .malformedFrame("prompt event has no event")
        }
    }
}
