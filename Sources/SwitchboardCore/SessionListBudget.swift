import SwitchboardProtocol

/// Fits sessions into one answer (a ListSessions page, the sessions of a server
/// status) of at most `maxBytes`: the client's frame size less what surrounds
/// the sessions. Without it, enough sessions (or one session stored with huge
/// labels before labels were bounded) would make the answer larger than the
/// reader's frame, and the call would fail for everyone who lists them.
///
/// Sizes are estimates that are never below the encoded size (``estimatedSize(of:)``),
/// as ``TurnPageBudget`` does for turns.
public struct SessionListBudget: Sendable {
    /// What of the next session goes into the answer.
    public enum Admission: Hashable, Sendable {
        /// The whole session.
        case whole
        /// The session without its labels (`labels_omitted`): first in its
        /// answer, and too large for it with them.
        case withoutLabels
        /// Nothing: the answer is full (count or bytes) and ends before it.
        case full
    }

    /// A session's encoding besides its id, labels, backend and current turn id:
    /// its tag and length in the list, the settings' numbers, state, times,
    /// counters, owner. About 170 bytes at most; generous.
    public static let sessionOverhead = 256
    /// A label's encoding besides its key and value: its tag and length, the
    /// key's and the value's.
    public static let labelOverhead = 24

    public let maxBytes: Int
    public let maxCount: Int
    /// A ListSessions page holds at least one session (without its labels when
    /// it does not fit with them), so that paging always advances.
    public let admitsFirst: Bool
    /// Sessions admitted so far.
    public private(set) var count = 0
    /// Bytes admitted so far.
    public private(set) var bytes = 0

    public init(maxBytes: Int, maxCount: Int = .max, admitsFirst: Bool) {
        self.maxBytes = max(0, maxBytes)
        self.maxCount = max(1, maxCount)
        self.admitsFirst = admitsFirst
    }

    /// An upper bound of the session's encoded size in a list, labels included
    /// unless `withLabels` is false.
    public static func estimatedSize(of session: Session, withLabels: Bool = true) -> Int {
        var size = sessionOverhead + session.id.utf8.count + session.settings.backend.utf8.count
            + session.currentTurnID.utf8.count
        if withLabels {
            for label in session.labels {
                size = saturatingSum(size, labelOverhead + label.key.utf8.count + label.value.utf8.count)
            }
        }
        return size
    }

    /// Admits (or not) the next session.
    public mutating func admit(_ session: Session) -> Admission {
        guard count < maxCount else { return .full }
        let remaining = maxBytes - bytes
        let whole = Self.estimatedSize(of: session)
        if whole <= remaining {
            count += 1
            bytes += whole
            return .whole
        }
        guard count == 0 else { return .full }
        let bare = Self.estimatedSize(of: session, withLabels: false)
        guard bare <= remaining || admitsFirst else { return .full }
        count += 1
        bytes = Self.saturatingSum(bytes, bare)
        return .withoutLabels
    }

    /// Admits `session` alone (GetSession): as it is when it fits, else without its labels.
    public static func fitting(_ session: Session, maxBytes: Int) -> Session {
        var budget = SessionListBudget(maxBytes: maxBytes, maxCount: 1, admitsFirst: true)
        return budget.admit(session) == .whole ? session : session.withoutLabels()
    }

    private static func saturatingSum(_ a: Int, _ b: Int) -> Int {
        let (value, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : value
    }
}

extension Session {
    /// The session with its labels left out and marked so (`labels_omitted`).
    public func withoutLabels() -> Session {
        var copy = self
        copy.labels = []
        copy.labelsOmitted = true
        return copy
    }
}
