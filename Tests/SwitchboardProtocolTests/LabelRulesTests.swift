import SwitchboardProtocol
import Testing

@Suite("Label rules")
struct LabelRulesTests {
    static let longestPrefix = (0..<4).map { _ in String(repeating: "p", count: 62) }.joined(separator: ".") + ".a"
    static let longestKey = longestPrefix + "/" + String(repeating: "n", count: 63)
    static let longestValue = String(repeating: "v", count: 63)

    @Test("labels within Kubernetes' rules are accepted, up to 64 of the longest")
    func accepted() throws {
        #expect(Self.longestPrefix.utf8.count == 253)
        #expect(Self.longestKey.utf8.count == LabelRules.maxKeyLength)
        let examples = [
            Label(key: "team", value: "docs"),
            Label(key: "test", value: "durable"),
            Label(key: "example.com/run_id", value: "py-123-test_sessions"),
            Label(key: "a", value: ""),
            Label(key: "A.b-C_d", value: "0"),
            Label(key: "x-1.y/Z", value: "a.B-c_D"),
        ]
        try LabelRules.validate(examples)
        let most = (0..<LabelRules.maxCount).map { index in
            Label(key: String(Self.longestKey.dropLast(2)) + String(format2: index), value: Self.longestValue)
        }
        try LabelRules.validate(most)
        #expect(LabelRules.areValid(most))
    }

    @Test(
        "a label that breaks a rule is INVALID_ARGUMENT naming it, its place and the rule",
        arguments: [
            (Label(key: "", value: "v"), "invalid label key \"\" (labels[1])", LabelRules.nameRule),
            (Label(key: String(repeating: "k", count: 64), value: "v"), "(labels[1])", LabelRules.nameRule),
            (Label(key: "-k", value: "v"), "invalid label key \"-k\"", LabelRules.nameRule),
            (Label(key: "k.", value: "v"), "invalid label key \"k.\"", LabelRules.nameRule),
            (Label(key: "k y", value: "v"), "invalid label key \"k y\"", LabelRules.nameRule),
            (Label(key: "ключ", value: "v"), "invalid label key \"ключ\"", LabelRules.nameRule),
            (Label(key: "k\u{0}", value: "v"), "invalid label key \"k\\0\"", LabelRules.nameRule),
            (Label(key: "Example.com/k", value: "v"), "invalid label key \"Example.com/k\"", LabelRules.prefixRule),
            (Label(key: "/k", value: "v"), "invalid label key \"/k\"", LabelRules.prefixRule),
            (Label(key: "a..b/k", value: "v"), "invalid label key \"a..b/k\"", LabelRules.prefixRule),
            (Label(key: "example.com/", value: "v"), "invalid label key \"example.com/\"", LabelRules.nameRule),
            (Label(key: "a/b/c", value: "v"), "invalid label key \"a/b/c\"", LabelRules.nameRule),
            (Label(key: String(repeating: "p", count: 320) + "/k", value: "v"), "(labels[1])", "at most 317 characters"),
            (Label(key: String(repeating: "p", count: 254) + "/k", value: "v"), "(labels[1])", LabelRules.prefixRule),
            (Label(key: "k", value: String(repeating: "v", count: 64)), "of label \"k\" (labels[1])", LabelRules.valueRule),
            (Label(key: "k", value: "Zürich"), "invalid value \"Zürich\" of label \"k\"", LabelRules.valueRule),
            (Label(key: "k", value: "_v"), "invalid value \"_v\"", LabelRules.valueRule),
            (Label(key: "k", value: "a b"), "invalid value \"a b\"", LabelRules.valueRule),
        ]
    )
    func refused(label: Label, naming: String, rule: String) {
        let labels = [Label(key: "fine", value: "ok"), label]
        let error = #expect(throws: SwitchboardError.self) { try LabelRules.validate(labels) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains(naming) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains(rule) == true, "\(error?.message ?? "")")
        #expect(!LabelRules.areValid(labels))
    }

    @Test("more than 64 labels, or a key twice, is INVALID_ARGUMENT")
    func countAndDuplicates() {
        let many = (0...LabelRules.maxCount).map { Label(key: "k\($0)", value: "") }
        let tooMany = #expect(throws: SwitchboardError.self) { try LabelRules.validate(many) }
        #expect(tooMany?.message == "too many labels: 65 (at most 64)")
        let twice = [Label(key: "k", value: "a"), Label(key: "j", value: ""), Label(key: "k", value: "b")]
        let duplicate = #expect(throws: SwitchboardError.self) { try LabelRules.validate(twice, field: "register.labels") }
        #expect(duplicate?.code == .invalidArgument)
        #expect(duplicate?.message == "label key \"k\" appears more than once in register.labels (keys must be unique)")
    }

    @Test("a huge label is named by its first 64 characters and its size, so the error stays small")
    func hugeLabelMessage() {
        let huge = [Label(key: "big", value: String(repeating: "x", count: 100_000))]
        let error = #expect(throws: SwitchboardError.self) { try LabelRules.validate(huge) }
        #expect(error?.message.contains("\"" + String(repeating: "x", count: 64) + "\"… (100000 bytes)") == true)
        #expect((error?.message.utf8.count ?? .max) < 400, "\(error?.message.utf8.count ?? 0) bytes")
    }
}

private extension String {
    /// Two decimal digits.
    init(format2 number: Int) {
        self = number < 10 ? "0\(number)" : "\(number)"
    }
}
