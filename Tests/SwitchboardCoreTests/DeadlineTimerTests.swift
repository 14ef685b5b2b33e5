import Synchronization
import SwitchboardCore
import SwitchboardProtocol
import Testing

/// `DeadlineTimer` replaced cancelled `Task.sleep`s, whose wake-up job outlived the
/// cancellation until the original deadline (issue #12). What matters: it fires,
/// it fires again when re-armed, it never fires once cancelled, and cancelling
/// releases what its handler holds at once, however far away the deadline was.
@Suite("Deadline timer")
struct DeadlineTimerTests {
    @Test("fires at its deadline, and again when re-armed")
    func firesAndRearms() async {
        let fired = Atomic<Int>(0)
        let timer = DeadlineTimer(deadline: .now + .milliseconds(20)) { fired.wrappingAdd(1, ordering: .relaxed) }
        await eventually("the timer fired") { fired.load(ordering: .relaxed) == 1 }
        timer.rearm(at: .now)
        await eventually("the re-armed timer fired") { fired.load(ordering: .relaxed) == 2 }
        timer.cancel()
    }

    @Test("a deadline that has passed fires at once")
    func pastDeadline() async {
        let fired = Atomic<Bool>(false)
        let timer = DeadlineTimer(deadline: .now - .seconds(1)) { fired.store(true, ordering: .relaxed) }
        await eventually("the timer fired") { fired.load(ordering: .relaxed) }
        timer.cancel()
    }

    @Test("a cancelled timer never fires, and re-arming it does nothing")
    func cancelledNeverFires() async throws {
        let fired = Atomic<Bool>(false)
        let timer = DeadlineTimer(deadline: .now + TestTimeScale.milliseconds(50)) { fired.store(true, ordering: .relaxed) }
        timer.cancel()
        timer.rearm(at: .now)
        // Well past the deadline it had.
        try await Task.sleep(for: TestTimeScale.milliseconds(300))
        let firedAfterCancel = fired.load(ordering: .relaxed)
        #expect(!firedAfterCancel)
    }

    @Test("cancelling releases the handler at once, even with a deadline an hour away")
    func cancelReleasesHandler() async {
        final class Payload: Sendable {}
        let released = WeakPayload()
        do {
            let payload = Payload()
            released.set(payload)
            let timer = DeadlineTimer(deadline: .now + .seconds(3_600)) { _ = payload }
            #expect(released.isAlive)
            timer.cancel()
        }
        await eventually("the cancelled timer's handler was released") { !released.isAlive }
    }

    @Test("a timer dropped without cancel is cancelled (its handler is released)")
    func deinitCancels() async {
        final class Payload: Sendable {}
        let released = WeakPayload()
        do {
            let payload = Payload()
            released.set(payload)
            _ = DeadlineTimer(deadline: .now + .seconds(3_600)) { _ = payload }
        }
        await eventually("the dropped timer's handler was released") { !released.isAlive }
    }
}

/// A weak reference readable from the test's polling closure.
private final class WeakPayload: Sendable {
    private let reference = Mutex<WeakBox>(WeakBox())

    private struct WeakBox {
        weak var object: AnyObject?
    }

    func set(_ object: any AnyObject & Sendable) {
        reference.withLockAnnotated { $0.object = object }
    }

    var isAlive: Bool { reference.withLockAnnotated { $0.object != nil } }
}
