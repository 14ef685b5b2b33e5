import Foundation

/// How many times slower than a plain debug run this run is expected to be: 1
/// normally; `scripts/test.sh` sets `SWITCHBOARD_TEST_TIME_SCALE` for the Thread
/// Sanitizer pass, where every instrumented process starts and runs several times
/// slower. Tests stretch what must outlast other work (a long turn) and their hang
/// guards by it; what they assert stays the same.
enum TestTimeScale {
    static let factor: Int = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_TIME_SCALE"]
        .flatMap { Int($0) }
        .map { max(1, $0) } ?? 1

    /// `milliseconds`, stretched.
    static func ms(_ milliseconds: Int) -> Int { milliseconds * factor }

    /// `milliseconds`, stretched, as a `Duration`.
    static func milliseconds(_ milliseconds: Int) -> Duration { .milliseconds(milliseconds * factor) }

    /// `seconds`, stretched.
    static func seconds(_ seconds: Int) -> Duration { .seconds(seconds * factor) }

    /// The per-test time limit that only guards against hangs.
    static var hangGuardMinutes: Int { factor }
}
