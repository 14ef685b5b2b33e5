import SwitchboardProtocol

/// The open calls of one connection and the call-id rule (client-chosen,
/// strictly increasing). Event-loop confined, owned by the connection handler.
struct CallTable {
    enum Call {
        /// A unary call whose request has not arrived yet: it is answered as soon
        /// as the request comes (a half-close is not waited for).
        case unary(UnaryMethod)
        /// A prompt call whose request message has not arrived yet.
        case awaitingPrompt(deadline: ContinuousClock.Instant?)
        /// A prompt whose turn is running (or queued) on its own task.
        case prompt(PromptCall)
        /// A worker's `/switchboard.v1.Workers/Connect` call.
        case worker(WorkerCall)
        /// A unary call answered on a task (it waits for the store).
        case asyncUnary(UnaryMethod)
        /// An attach call whose request message has not arrived yet.
        case awaitingAttach(deadline: ContinuousClock.Instant?)
        /// An attach call replaying and following a turn on its own task.
        case attach(AttachCall)
    }

    enum Lookup {
        case open(Call)
        /// An id at or below the highest seen but no longer open: the call ended
        /// while the client was still sending for it (a benign race).
        case ended
        /// An id above the highest seen: the client never started it.
        case neverStarted
    }

    /// The highest call id the client has started (0 before the first call).
    private(set) var highestCallID: UInt64 = 0
    private var calls: [UInt64: Call] = [:]

    var count: Int { calls.count }
    var isEmpty: Bool { calls.isEmpty }

    /// Accepts `id` as a new call id if it is above every earlier one.
    mutating func claim(_ id: UInt64) -> Bool {
        guard id > highestCallID else { return false }
        highestCallID = id
        return true
    }

    func lookup(_ id: UInt64) -> Lookup {
        if let call = calls[id] { return .open(call) }
        return id <= highestCallID ? .ended : .neverStarted
    }

    subscript(id: UInt64) -> Call? {
        get { calls[id] }
        set { calls[id] = newValue }
    }

    @discardableResult
    mutating func remove(_ id: UInt64) -> Call? {
        calls.removeValue(forKey: id)
    }

    /// Empties the table (the connection is closing), returning what was open.
    mutating func removeAll() -> [Call] {
        defer { calls.removeAll() }
        return Array(calls.values)
    }

    /// The open calls with their ids, in id order.
    var openCalls: [(id: UInt64, call: Call)] {
        calls.sorted { $0.key < $1.key }.map { (id: $0.key, call: $0.value) }
    }

    var promptCalls: [PromptCall] {
        calls.values.compactMap { call in
            if case .prompt(let prompt) = call { return prompt }
            return nil
        }
    }

    /// The writers of the streaming calls (prompts and attaches).
    var streamingWriters: [StreamingCallWriter] {
        calls.values.compactMap { call in
            switch call {
            case .prompt(let prompt): prompt.writer
            case .attach(let attach): attach.writer
            default: nil
            }
        }
    }

    var workerCalls: [WorkerCall] {
        calls.values.compactMap { call in
            if case .worker(let worker) = call { return worker }
            return nil
        }
    }
}
