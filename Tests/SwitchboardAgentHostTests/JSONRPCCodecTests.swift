import Testing
@testable import SwitchboardAgentHost

@Suite("JSON and the JSON-RPC line codec")
struct JSONRPCCodecTests {
    @Test func parsesAndSerializesJSON() throws {
        let text = #"{"a":[1,-2.5e3,true,false,null],"b":"x\"y\\z\n\u00e9\ud83d\ude00","c":{}}"#
        let value = try JSONParser.parse(Array(text.utf8))
        #expect(value["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(value["b"]?.stringValue == "x\"y\\z\né😀")
        #expect(value["c"] == .object([]))
        let again = try JSONParser.parse(Array(value.serialized.utf8))
        #expect(again["b"] == value["b"])
        #expect(again["a"] == value["a"])
    }

    @Test func keepsTheBytesOfAMemberValue() throws {
        let text = #"{"params": {"update" :  {"sessionUpdate":"x", "n": [1, 2]} }}"#
        let bytes = Array(text.utf8)
        let value = try JSONParser.parse(bytes)
        let update = try #require(value["params"]?.member("update"))
        #expect(String(decoding: bytes[update.valueRange], as: UTF8.self) == #"{"sessionUpdate":"x", "n": [1, 2]}"#)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "\"\u{01}\"", "tru", "{} x", "\"\\ud800\"",
    ])
    func rejectsBadJSON(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func rejectsDeepNestingWithoutRecursingFurther() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(deep.utf8)) }
        let tooDeep = String(repeating: "[", count: JSONParser.maxDepth + 1) + String(repeating: "]", count: JSONParser.maxDepth + 1)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(tooDeep.utf8)) }
        let fits = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        #expect(throws: Never.self) { try JSONParser.parse(Array(fits.utf8)) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
    }

    @Test func decodesTheThreeKindsOfMessage() throws {
        let response = try JSONRPCMessage.decode(line: Array(#"{"jsonrpc":"2.0","id":3,"result":{"stopReason":"end_turn"}}"#.utf8))
        #expect(response == .response(id: .number("3"), result: .success(.object(["stopReason": .string("end_turn")]))))
        let error = try JSONRPCMessage.decode(line: Array(#"{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"no"}}"#.utf8))
        #expect(error == .response(id: .string("x"), result: .failure(JSONRPCError(code: -32601, message: "no"))))
        let request = try JSONRPCMessage.decode(line: Array(#"{"jsonrpc":"2.0","id":0,"method":"session/request_permission","params":{}}"#.utf8))
        guard case .request(.number("0"), "session/request_permission", .some) = request else {
            Issue.record("not a request: \(request)")
            return
        }
        let line = Array(#"{"jsonrpc":"2.0","method":"session/update","params":{"update":{}}}"#.utf8)
        guard case .notification("session/update", .some, line) = try JSONRPCMessage.decode(line: line) else {
            Issue.record("not a notification")
            return
        }
    }

    @Test(arguments: [
        "this line is not JSON-RPC: {oops", #"{"hello":"world"}"#, "[1,2]", #"{"jsonrpc":"1.0","id":1,"result":1}"#,
        #"{"jsonrpc":"2.0","id":1}"#, #"{"jsonrpc":"2.0","id":[1],"result":1}"#, #"{"jsonrpc":"2.0","method":7}"#,
        #"{"jsonrpc":"2.0","id":1,"error":{"message":"no code"}}"#,
    ])
    func rejectsLinesThatAreNotJSONRPC(_ text: String) {
        #expect {
            try JSONRPCMessage.decode(line: Array(text.utf8))
        } throws: { error in
            guard case .notJSONRPC = error as? AgentProtocolViolation else { return false }
            return true
        }
    }

    @Test func splitsLinesAcrossReads() throws {
        var splitter = AgentLineSplitter(maxLineBytes: 16)
        var lines: [String] = []
        for piece in ["ab", "c\nde", "f\r\n\n", "g"] {
            try Array(piece.utf8).withUnsafeBytes { bytes in
                try splitter.append(bytes) { line in lines.append(String(decoding: line, as: UTF8.self)) }
            }
        }
        #expect(lines == ["abc", "def"])
        #expect(splitter.bufferedByteCount == 1)
    }

    @Test func refusesALongLineWithoutBufferingIt() {
        let limit = 1 << 20
        var splitter = AgentLineSplitter(maxLineBytes: limit)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)
        defer { chunk.deallocate() }
        chunk.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "x"))
        var fed = 0
        var failure: AgentProtocolViolation?
        // 64 MiB without a newline, fed as a pipe would deliver it.
        while fed < 64 << 20, failure == nil {
            do throws(AgentProtocolViolation) {
                try splitter.append(UnsafeRawBufferPointer(chunk)) { _ in Issue.record("no line is complete") }
            } catch {
                failure = error
            }
            #expect(splitter.bufferedByteCount <= limit)
            fed += chunk.count
        }
        #expect(failure == .lineTooLong(limit: limit))
        #expect(fed <= limit + chunk.count)
    }

    @Test func stderrRingKeepsTheTailAndTheLastLine() {
        var ring = StderrRing(capacity: 64)
        for index in 0..<100 {
            Array("line \(index)\n".utf8).withUnsafeBytes { ring.append($0) }
        }
        #expect(ring.lastLine == "line 99")
        #expect(ring.tail.hasSuffix("line 98\nline 99\n"))
        #expect(ring.tail.utf8.count <= 64)
        #expect(ring.tail.hasPrefix("line "))
        Array("partial".utf8).withUnsafeBytes { ring.append($0) }
        #expect(ring.lastLine == "partial")
    }
}
