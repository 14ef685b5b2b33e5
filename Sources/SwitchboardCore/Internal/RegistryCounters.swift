import Synchronization

/// Counters behind ``RegistryStatistics``, maintained on every transition so that a
/// status call costs O(max queue length), not O(sessions).
///
/// Sessions update them from inside their own critical section; this type's lock
/// (the queue-depth histogram) is a leaf: nothing else is ever locked under it.
final class RegistryCounters: Sendable {
    let sessions = Atomic<Int>(0)
    let idleSessions = Atomic<Int>(0)
    let busySessions = Atomic<Int>(0)
    let runningTurns = Atomic<Int>(0)
    let queuedPrompts = Atomic<Int>(0)
    let turnsCompleted = Atomic<UInt64>(0)
    /// `sessionsWithQueueDepth[d]` = sessions whose queue holds exactly `d` prompts
    /// (index 0 unused).
    private let sessionsWithQueueDepth = Mutex<[Int]>([0])

    func queueDepthChanged(from old: Int, to new: Int) {
        guard old != new else { return }
        queuedPrompts.wrappingAdd(new - old, ordering: .relaxed)
        sessionsWithQueueDepth.withLockAnnotated { counts in
            if new >= counts.count { counts.append(contentsOf: repeatElement(0, count: new - counts.count + 1)) }
            if old > 0 { counts[old] -= 1 }
            if new > 0 { counts[new] += 1 }
        }
    }

    func stateChanged(from old: SessionLifecycle, to new: SessionLifecycle) {
        guard old != new else { return }
        switch old {
        case .idle: idleSessions.wrappingAdd(-1, ordering: .relaxed)
        case .busy: busySessions.wrappingAdd(-1, ordering: .relaxed)
        case .closed: break
        }
        switch new {
        case .idle: idleSessions.wrappingAdd(1, ordering: .relaxed)
        case .busy: busySessions.wrappingAdd(1, ordering: .relaxed)
        case .closed: break
        }
    }

    var maxQueueDepth: Int {
        sessionsWithQueueDepth.withLockAnnotated { counts in
            counts.lastIndex(where: { $0 > 0 }) ?? 0
        }
    }

    func snapshot() -> RegistryStatistics {
        RegistryStatistics(
            sessionsTotal: max(0, sessions.load(ordering: .relaxed)),
            sessionsIdle: max(0, idleSessions.load(ordering: .relaxed)),
            sessionsBusy: max(0, busySessions.load(ordering: .relaxed)),
            turnsInFlight: max(0, runningTurns.load(ordering: .relaxed)),
            queuedPrompts: max(0, queuedPrompts.load(ordering: .relaxed)),
            maxQueueDepth: maxQueueDepth,
            turnsCompleted: turnsCompleted.load(ordering: .relaxed)
        )
    }
}
