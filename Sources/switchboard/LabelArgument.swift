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
}
