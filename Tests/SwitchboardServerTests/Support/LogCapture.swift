import Logging
import Synchronization
import SwitchboardProtocol

/// Keeps every record logged through its ``logger``, for tests of what the
/// server logs (refusals at notice, with the peer's uid and pid).
final class LogCapture: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let records = Mutex<[Record]>([])

    var logger: Logger {
        Logger(label: "switchboard.tests.capture") { _ in Handler(capture: self) }
    }

    var all: [Record] { records.withLockAnnotated { $0 } }

    fileprivate func append(_ record: Record) {
        records.withLockAnnotated { $0.append(record) }
    }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var merged = metadata
            if let extra = event.metadata { merged.merge(extra) { _, new in new } }
            capture.append(Record(
                level: event.level,
                message: "\(event.message)",
                metadata: merged.mapValues { "\($0)" }
            ))
        }
    }
}
