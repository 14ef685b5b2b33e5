import ArgumentParser
import SwitchboardProtocol

/// Parses `--label key=value` (the value may be empty and may contain `=`).
enum LabelArgument {
    static func parse(_ text: String) throws(ValidationError) -> Label {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw ValidationError("invalid label \"\(text)\": expected key=value")
        }
        return Label(key: String(text[..<equals]), value: String(text[text.index(after: equals)...]))
    }

    /// The subcommands that take `--label`, by their path of names.
    static let commandPaths: [[String]] = [["session", "create"], ["session", "list"], ["worker"]]

    /// Takes every `--label VALUE` and `--label=VALUE` out of `arguments` (the
    /// command line without the program name) in one pass, when the command takes
    /// labels, and stops at `--` (what follows is a worker's command).
    ///
    /// Why: ArgumentParser removes each parsed argument from an array and merges
    /// its origins into a set, so N repeated options cost O(N²) (2,000 labels
    /// took 7 s). The labels are parsed here instead and set on the parsed
    /// command (``LabelArgumentCommand``). A `--label` without a value is left in
    /// place for ArgumentParser to report.
    static func extract(from arguments: [String]) -> (arguments: [String], labels: [String]) {
        guard commandPaths.contains(where: { arguments.starts(with: $0) }) else { return (arguments, []) }
        var rest: [String] = []
        rest.reserveCapacity(arguments.count)
        var labels: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            if argument == "--" {
                rest.append(contentsOf: arguments[index...])
                break
            }
            if argument == "--label", index + 1 < arguments.endIndex {
                labels.append(arguments[index + 1])
                index += 2
                continue
            }
            if argument.hasPrefix("--label=") {
                labels.append(String(argument.dropFirst("--label=".count)))
            } else {
                rest.append(argument)
            }
            index += 1
        }
        return (rest, labels)
    }
}

/// A subcommand with a repeatable `--label key=value` option, whose values
/// ``LabelArgument/extract(from:)`` parses in linear time.
protocol LabelArgumentCommand: ParsableCommand {
    var labels: [Label] { get set }
}

extension SessionCreate: LabelArgumentCommand {}
extension SessionList: LabelArgumentCommand {}
extension WorkerSubcommand: LabelArgumentCommand {}
