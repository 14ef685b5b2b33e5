import Foundation
import SwitchboardProtocol

/// The CLI's check of text from outside (stdin, argv) before it becomes a request
/// string: a NUL byte or invalid UTF-8 is refused with INVALID_ARGUMENT (exit 13),
/// as the server would refuse it, instead of being cut at the NUL or repaired with
/// U+FFFD. Nothing is sent.
enum StringInput {
    /// `data` as the value of the string field `field` (say, "prompt").
    static func text(_ data: Data, field: String) throws(SwitchboardError) -> String {
        if let problem = InvalidStringField.problem(in: data) {
            throw InvalidStringField(field: field, problem: problem).error
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Every command-line argument must be valid UTF-8 (argv cannot hold a NUL).
    static func checkArguments() throws(SwitchboardError) {
        for index in stride(from: 1, to: Int(CommandLine.argc), by: 1) {  // argc may be 0
            guard let argument = CommandLine.unsafeArgv[index] else { continue }
            let bytes = UnsafeRawBufferPointer(start: argument, count: strlen(argument))
            if InvalidStringField.problem(in: bytes) != nil {
                throw SwitchboardError(code: .invalidArgument, message: "command-line argument \(index) is not valid UTF-8")
            }
        }
    }
}
