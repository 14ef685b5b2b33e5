/// What a label may be: Kubernetes' label rules, plus a count per message.
///
/// Labels are a client's data that the server keeps and shows to others (the
/// administrator's status and listings, a worker's assignments), so they are
/// bounded: without a bound one user's labels could make another user's answer
/// larger than its frame. The server enforces these rules (it is the authority);
/// the Swift and Python clients check them too, before sending.
///
/// - at most ``maxCount`` labels, keys unique;
/// - key: `[prefix/]name`. The name is 1-63 characters of `[A-Za-z0-9-_.]`
///   beginning and ending with a letter or digit; the optional prefix is a DNS
///   subdomain of at most 253 characters (lowercase `[a-z0-9-]` parts separated
///   by dots, each beginning and ending with a letter or digit);
/// - value: empty, or 0-63 characters under the same rule as a key's name.
public enum LabelRules {
    public static let maxCount = 64
    public static let maxNameLength = 63
    public static let maxPrefixLength = 253
    public static let maxValueLength = 63
    /// The longest key: prefix, `/`, name.
    public static let maxKeyLength = maxPrefixLength + 1 + maxNameLength

    public static let nameRule = "a key's name (after an optional \"prefix/\") must be 1-63 characters of [A-Za-z0-9-_.], beginning and ending with a letter or digit"
    public static let prefixRule = "a key's prefix (before \"/\") must be a DNS subdomain of at most 253 characters: lowercase [a-z0-9-] parts separated by \".\", each beginning and ending with a letter or digit"
    public static let valueRule = "a value must be empty or at most 63 characters of [A-Za-z0-9-_.], beginning and ending with a letter or digit"

    /// Throws INVALID_ARGUMENT naming the first label that breaks a rule, and the
    /// rule. `field` names the labels in the message (`labels`, `register.labels`).
    public static func validate(_ labels: [Label], field: String = "labels") throws(SwitchboardError) {
        if labels.count > maxCount {
            throw SwitchboardError(
                code: .invalidArgument,
                message: "too many \(field): \(labels.count) (at most \(maxCount))"
            )
        }
        var seen = Set<String>()
        for (index, label) in labels.enumerated() {
            if let rule = violation(ofKey: label.key) {
                throw SwitchboardError(
                    code: .invalidArgument,
                    message: "invalid label key \(quoted(label.key)) (\(field)[\(index)]): \(rule)"
                )
            }
            if !isValidValue(label.value) {
                throw SwitchboardError(
                    code: .invalidArgument,
                    message: "invalid value \(quoted(label.value)) of label \(quoted(label.key)) (\(field)[\(index)]): \(valueRule)"
                )
            }
            if !seen.insert(label.key).inserted {
                throw SwitchboardError(
                    code: .invalidArgument,
                    message: "label key \(quoted(label.key)) appears more than once in \(field) (keys must be unique)"
                )
            }
        }
    }

    /// Whether every label follows the rules (a session stored before they existed may not).
    public static func areValid(_ labels: [Label]) -> Bool {
        (try? validate(labels)) != nil
    }

    /// The rule `key` breaks, or nil.
    public static func violation(ofKey key: String) -> String? {
        let bytes = key.utf8
        guard bytes.count <= maxKeyLength else {
            return "a key must be at most \(maxKeyLength) characters (\(maxPrefixLength) of prefix, \"/\", \(maxNameLength) of name), this one has \(bytes.count) bytes"
        }
        guard let slash = bytes.firstIndex(of: UInt8(ascii: "/")) else {
            return isValidName(bytes[...], maxLength: maxNameLength) ? nil : nameRule
        }
        let prefix = bytes[..<slash]
        let name = bytes[bytes.index(after: slash)...]
        if !isValidDNSSubdomain(prefix) { return prefixRule }
        if !isValidName(name, maxLength: maxNameLength) { return nameRule }
        return nil
    }

    public static func isValidValue(_ value: String) -> Bool {
        value.isEmpty || isValidName(value.utf8[...], maxLength: maxValueLength)
    }

    /// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most `maxLength` bytes.
    private static func isValidName(_ bytes: Substring.UTF8View, maxLength: Int) -> Bool {
        guard let first = bytes.first, let last = bytes.last, bytes.count <= maxLength else { return false }
        guard isAlphanumeric(first), isAlphanumeric(last) else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    /// RFC 1123 subdomain as Kubernetes checks it: at most 253 bytes of lowercase
    /// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` parts joined by dots.
    private static func isValidDNSSubdomain(_ bytes: Substring.UTF8View) -> Bool {
        guard !bytes.isEmpty, bytes.count <= maxPrefixLength else { return false }
        for part in bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard let first = part.first, let last = part.last else { return false }
            guard isLowerAlphanumeric(first), isLowerAlphanumeric(last) else { return false }
            guard part.allSatisfy({ isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") }) else { return false }
        }
        return true
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLowerAlphanumeric(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// A key or value for an error message: at most 64 characters (the rest
    /// elided with its size), control characters escaped.
    static func quoted(_ text: String) -> String {
        let shown = String(text.unicodeScalars.prefix(64))
        let quoted = shown.debugDescription
        guard shown.utf8.count < text.utf8.count else { return quoted }
        return quoted + "… (\(text.utf8.count) bytes)"
    }
}
