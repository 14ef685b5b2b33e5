import Foundation
import SwitchboardProtocol

/// The CLI's `--json` documents.
///
/// Keys are the proto field names (snake_case), enums their lowercase names
/// (`"idle"`, `"finished"`), status codes their canonical names (`"OK"`), 64-bit
/// counters plain JSON numbers. Every field is always present, so scripts can rely on
/// the shape. These types live in the CLI, not in the client library: they are an
/// output format, not part of the protocol.
enum JSONOutput {
    /// A whole document, pretty-printed with sorted keys (stable across runs).
    static func document(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }

    /// One JSON Lines record: compact, sorted keys, one line.
    static func line(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }

    // MARK: - Sessions

    struct LabelJSON: Encodable {
        let key: String
        let value: String

        init(_ label: Label) {
            key = label.key
            value = label.value
        }
    }

    struct SessionSettingsJSON: Encodable {
        let backend: String
        let idleTimeoutMs: UInt64
        let turnDeadlineMs: UInt64
        let stallTimeoutMs: UInt64
        let maxQueuedPrompts: UInt32
        let whenNoWorker: String

        enum CodingKeys: String, CodingKey {
            case whenNoWorker = "when_no_worker"
            case backend
            case idleTimeoutMs = "idle_timeout_ms"
            case turnDeadlineMs = "turn_deadline_ms"
            case stallTimeoutMs = "stall_timeout_ms"
            case maxQueuedPrompts = "max_queued_prompts"
        }

        init(_ settings: SessionSettings) {
            backend = settings.backend
            idleTimeoutMs = settings.idleTimeoutMs
            turnDeadlineMs = settings.turnDeadlineMs
            stallTimeoutMs = settings.stallTimeoutMs
            maxQueuedPrompts = settings.maxQueuedPrompts
            whenNoWorker = settings.whenNoWorker.description
        }
    }

    struct SessionJSON: Encodable {
        let id: String
        let labels: [LabelJSON]
        let settings: SessionSettingsJSON
        let state: String
        let createdAtMs: UInt64
        let lastActivityMs: UInt64
        let queuedPrompts: UInt32
        let currentTurnID: String
        let turnsCompleted: UInt64
        let ownerUID: UInt32
        let labelsOmitted: Bool

        enum CodingKeys: String, CodingKey {
            case id, labels, settings, state
            case createdAtMs = "created_at_ms"
            case lastActivityMs = "last_activity_ms"
            case queuedPrompts = "queued_prompts"
            case currentTurnID = "current_turn_id"
            case turnsCompleted = "turns_completed"
            case ownerUID = "owner_uid"
            case labelsOmitted = "labels_omitted"
        }

        init(_ session: Session) {
            id = session.id
            labels = session.labels.map(LabelJSON.init)
            settings = SessionSettingsJSON(session.settings)
            state = session.state.description
            createdAtMs = session.createdAtMs
            lastActivityMs = session.lastActivityMs
            queuedPrompts = session.queuedPrompts
            currentTurnID = session.currentTurnID
            turnsCompleted = session.turnsCompleted
            ownerUID = session.ownerUID
            labelsOmitted = session.labelsOmitted
        }
    }

    struct SessionListJSON: Encodable {
        let sessions: [SessionJSON]
    }

    struct CloseSessionJSON: Encodable {
        let session: SessionJSON?
        let cancelledTurns: UInt32
        let rejectedPrompts: UInt32

        enum CodingKeys: String, CodingKey {
            case session
            case cancelledTurns = "cancelled_turns"
            case rejectedPrompts = "rejected_prompts"
        }

        init(_ response: CloseSessionResponse) {
            session = response.session.map(SessionJSON.init)
            cancelledTurns = response.cancelledTurns
            rejectedPrompts = response.rejectedPrompts
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(session, forKey: .session)  // null rather than absent
            try container.encode(cancelledTurns, forKey: .cancelledTurns)
            try container.encode(rejectedPrompts, forKey: .rejectedPrompts)
        }
    }

    // MARK: - Status

    struct ServerStatusJSON: Encodable {
        let serverVersion: String
        let protocolVersion: UInt32
        let uptimeMs: UInt64
        let connections: UInt32
        let sessionsTotal: UInt32
        let sessionsIdle: UInt32
        let sessionsBusy: UInt32
        let turnsInFlight: UInt32
        let queuedPrompts: UInt32
        let maxQueueDepth: UInt32
        let turnsCompleted: UInt64
        let draining: Bool
        let sessions: [SessionJSON]
        let sessionsOmitted: UInt32
        let pid: UInt32
        let workers: [WorkerInfoJSON]
        let workerQueues: [WorkerQueueInfoJSON]
        let storeError: String
        let storeErrorSinceMs: UInt64

        enum CodingKeys: String, CodingKey {
            case serverVersion = "server_version"
            case protocolVersion = "protocol_version"
            case uptimeMs = "uptime_ms"
            case connections
            case sessionsTotal = "sessions_total"
            case sessionsIdle = "sessions_idle"
            case sessionsBusy = "sessions_busy"
            case turnsInFlight = "turns_in_flight"
            case queuedPrompts = "queued_prompts"
            case maxQueueDepth = "max_queue_depth"
            case turnsCompleted = "turns_completed"
            case draining, sessions, pid, workers
            case sessionsOmitted = "sessions_omitted"
            case workerQueues = "worker_queues"
            case storeError = "store_error"
            case storeErrorSinceMs = "store_error_since_ms"
        }

        init(_ status: ServerStatus) {
            storeError = status.storeError
            storeErrorSinceMs = status.storeErrorSinceMs
            serverVersion = status.serverVersion
            protocolVersion = status.protocolVersion
            uptimeMs = status.uptimeMs
            connections = status.connections
            sessionsTotal = status.sessionsTotal
            sessionsIdle = status.sessionsIdle
            sessionsBusy = status.sessionsBusy
            turnsInFlight = status.turnsInFlight
            queuedPrompts = status.queuedPrompts
            maxQueueDepth = status.maxQueueDepth
            turnsCompleted = status.turnsCompleted
            draining = status.draining
            sessions = status.sessions.map(SessionJSON.init)
            sessionsOmitted = status.sessionsOmitted
            pid = status.pid
            workers = status.workers.map(WorkerInfoJSON.init)
            workerQueues = status.workerQueues.map(WorkerQueueInfoJSON.init)
        }
    }

    struct TurnSummaryJSON: Encodable {
        let turnID: String
        let state: String
        let code: String
        let message: String
        let stopReason: String
        let chunks: UInt64
        let bytes: UInt64
        let startedAtMs: UInt64
        let endedAtMs: UInt64
        let promptPreview: String

        enum CodingKeys: String, CodingKey {
            case turnID = "turn_id"
            case state, code, message
            case stopReason = "stop_reason"
            case chunks, bytes
            case startedAtMs = "started_at_ms"
            case endedAtMs = "ended_at_ms"
            case promptPreview = "prompt_preview"
        }

        init(_ turn: TurnSummary) {
            turnID = turn.turnID
            state = turn.state.description
            code = turn.code.name
            message = turn.message
            stopReason = turn.stopReason
            chunks = turn.chunks
            bytes = turn.bytes
            startedAtMs = turn.startedAtMs
            endedAtMs = turn.endedAtMs
            promptPreview = turn.promptPreview
        }
    }

    struct SessionStatusJSON: Encodable {
        let session: SessionJSON?
        let turns: [TurnSummaryJSON]

        init(_ status: SessionStatus) {
            session = status.session.map(SessionJSON.init)
            turns = status.turns.map(TurnSummaryJSON.init)
        }

        enum CodingKeys: String, CodingKey { case session, turns }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(session, forKey: .session)
            try container.encode(turns, forKey: .turns)
        }
    }

    // MARK: - History

    struct TurnHistoryEntryJSON: Encodable {
        let summary: TurnSummaryJSON
        let prompt: String
        /// base64, like `Output.data`.
        let output: String
        /// The output as a string when it is valid UTF-8, else null.
        let outputText: String?
        let outputDropped: Bool
        let outputOmitted: Bool

        enum CodingKeys: String, CodingKey {
            case summary, prompt, output
            case outputText = "output_text"
            case outputDropped = "output_dropped"
            case outputOmitted = "output_omitted"
        }

        init(_ entry: TurnHistoryEntry) {
            summary = TurnSummaryJSON(entry.summary)
            prompt = entry.prompt
            output = Data(entry.output).base64EncodedString()
            outputText = String(validating: entry.output, as: UTF8.self)
            outputDropped = entry.outputDropped
            outputOmitted = entry.outputOmitted
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(summary, forKey: .summary)
            try container.encode(prompt, forKey: .prompt)
            try container.encode(output, forKey: .output)
            try container.encode(outputText, forKey: .outputText)  // null rather than absent
            try container.encode(outputDropped, forKey: .outputDropped)
            try container.encode(outputOmitted, forKey: .outputOmitted)
        }
    }

    struct TurnHistoryJSON: Encodable {
        let turns: [TurnHistoryEntryJSON]
        let nextPageToken: String

        enum CodingKeys: String, CodingKey {
            case turns
            case nextPageToken = "next_page_token"
        }

        init(turns: [TurnHistoryEntry], nextPageToken: String) {
            self.turns = turns.map(TurnHistoryEntryJSON.init)
            self.nextPageToken = nextPageToken
        }
    }

    // MARK: - Prompt events (JSON Lines)

    /// One line per event, named like the `PromptEvent` oneof case:
    /// `{"accepted":{…}}`, `{"started":{…}}`, `{"output":{…}}`, `{"finished":{…}}`,
    /// then `{"end":{"code":"OK","message":""}}` with the call's final status.
    struct PromptEventJSON: Encodable {
        struct Attached: Encodable {
            let turnID: String
            let state: String
            let lastSequence: UInt64
            enum CodingKeys: String, CodingKey {
                case turnID = "turn_id"
                case state
                case lastSequence = "last_sequence"
            }
        }
        struct Accepted: Encodable {
            let turnID: String
            let queuePosition: UInt32
            enum CodingKeys: String, CodingKey {
                case turnID = "turn_id"
                case queuePosition = "queue_position"
            }
        }

        struct Started: Encodable {
            let turnID: String
            enum CodingKeys: String, CodingKey { case turnID = "turn_id" }
        }

        /// `data` is base64 (the proto JSON mapping of `bytes`); `text` is the same bytes
        /// as a string when they are valid UTF-8 on their own, else null (a chunk may
        /// end in the middle of a multi-byte character).
        struct Output: Encodable {
            let sequence: UInt64
            let data: String
            let text: String?

            enum CodingKeys: String, CodingKey { case sequence, data, text }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(sequence, forKey: .sequence)
                try container.encode(data, forKey: .data)
                try container.encode(text, forKey: .text)
            }
        }

        struct Finished: Encodable {
            let turnID: String
            let stopReason: String
            let chunks: UInt64
            let bytes: UInt64
            let durationMs: UInt64
            enum CodingKeys: String, CodingKey {
                case turnID = "turn_id"
                case stopReason = "stop_reason"
                case chunks, bytes
                case durationMs = "duration_ms"
            }
        }

        struct End: Encodable {
            let code: String
            let message: String
        }

        var attached: Attached?
        var accepted: Accepted?
        var started: Started?
        var output: Output?
        var finished: Finished?
        var end: End?

        init(_ event: PromptEvent) {
            switch event {
            case .attached(let attached):
                self.attached = Attached(
                    turnID: attached.turnID,
                    state: attached.state.description,
                    lastSequence: attached.lastSequence
                )
            case .accepted(let accepted):
                self.accepted = Accepted(turnID: accepted.turnID, queuePosition: accepted.queuePosition)
            case .started(let turnID):
                self.started = Started(turnID: turnID)
            case .output(let chunk):
                self.output = Output(
                    sequence: chunk.sequence,
                    data: Data(chunk.data).base64EncodedString(),
                    text: String(validating: chunk.data, as: UTF8.self)
                )
            case .finished(let finished):
                self.finished = Finished(
                    turnID: finished.turnID,
                    stopReason: finished.stopReason,
                    chunks: finished.chunks,
                    bytes: finished.bytes,
                    durationMs: finished.durationMs
                )
            }
        }

        init(endCode code: StatusCode, message: String) {
            self.end = End(code: code.name, message: message)
        }
    }
}
