/// Why the agent's output broke the protocol; the turn ends UNAVAILABLE naming it.
public enum AgentProtocolViolation: Error, Sendable, Equatable, CustomStringConvertible {
    /// A line longer than the limit; it was not buffered past the limit.
    case lineTooLong(limit: Int)
    /// A line that is not a JSON-RPC 2.0 message (bad JSON, not UTF-8, or neither a
    /// request, a response nor a notification).
    case notJSONRPC(reason: String)

    public var description: String {
        switch self {
        case .lineTooLong(let limit): "agent wrote a line longer than \(limit) bytes"
        case .notJSONRPC(let reason): "agent wrote a line that is not JSON-RPC (\(reason))"
        }
    }
}

/// Splits the agent's stdout into lines, never holding more than `maxLineBytes`
/// of an unfinished line: a longer one is an error at once, not after buffering it.
public struct AgentLineSplitter: Sendable {
    public let maxLineBytes: Int
    private var partial: [UInt8] = []

    public init(maxLineBytes: Int) {
        self.maxLineBytes = maxLineBytes
    }

    /// Bytes of an unfinished line held now (bounded by `maxLineBytes`).
    public var bufferedByteCount: Int { partial.count }

    /// Appends `bytes` and calls `line` with each complete line (without its "\n";
    /// a trailing "\r" is dropped too). Empty lines are skipped.
    public mutating func append(
        _ bytes: UnsafeRawBufferPointer,
        line: ([UInt8]) throws(AgentProtocolViolation) -> Void
    ) throws(AgentProtocolViolation) {
        var start = 0
        while start < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
            guard let newline = rest.firstIndex(of: 0x0A) else {
                guard partial.count + rest.count <= maxLineBytes else {
                    partial = []
                    throw .lineTooLong(limit: maxLineBytes)
                }
                partial.append(contentsOf: rest)
                return
            }
            let segment = UnsafeRawBufferPointer(rebasing: rest[..<newline])
            guard partial.count + segment.count <= maxLineBytes else {
                partial = []
                throw .lineTooLong(limit: maxLineBytes)
            }
            var complete = partial
            partial = []
            complete.append(contentsOf: segment)
            if complete.last == 0x0D { complete.removeLast() }
            start += newline + 1
            if !complete.isEmpty { try line(complete) }
        }
    }
}

/// A JSON-RPC error object (an agent's answer, or ours to its request).
public struct JSONRPCError: Error, Sendable, Equatable {
    public let code: Int
    public let message: String
}

/// One message from the agent.
public enum JSONRPCMessage: Sendable, Equatable {
    /// The agent asks us something (`session/request_permission`, fs, terminal).
    case request(id: JSONValue, method: String, params: JSONValue?)
    /// The agent tells us something (`session/update`); `line` is the whole line, so
    /// byte ranges of `params` can be cut out of it.
    case notification(method: String, params: JSONValue?, line: [UInt8])
    /// The answer to one of our requests.
    case response(id: JSONValue, result: Result<JSONValue, JSONRPCError>)

    /// Decodes one line, or says why it is not JSON-RPC 2.0.
    public static func decode(line: [UInt8]) throws(AgentProtocolViolation) -> JSONRPCMessage {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            throw .notJSONRPC(reason: "\(error.reason) at byte \(error.offset)")
        }
        guard case .object = value else { throw .notJSONRPC(reason: "not an object") }
        guard value["jsonrpc"] == .string("2.0") else { throw .notJSONRPC(reason: "no \"jsonrpc\": \"2.0\"") }
        let id = value["id"]
        if let id {
            switch id {
            case .number, .string, .null: break
            default: throw .notJSONRPC(reason: "bad id")
            }
        }
        if let method = value["method"] {
            guard let name = method.stringValue else { throw .notJSONRPC(reason: "method is not a string") }
            if let id { return .request(id: id, method: name, params: value["params"]) }
            return .notification(method: name, params: value["params"], line: line)
        }
        guard let id else { throw .notJSONRPC(reason: "neither request, response nor notification") }
        if let result = value["result"] {
            return .response(id: id, result: .success(result))
        }
        if let error = value["error"] {
            guard let code = error["code"]?.intValue else { throw .notJSONRPC(reason: "error without a code") }
            return .response(id: id, result: .failure(JSONRPCError(code: code, message: error["message"]?.stringValue ?? "")))
        }
        throw .notJSONRPC(reason: "response without result or error")
    }

    /// A request line (with its "\n").
    public static func requestLine(id: Int, method: String, params: JSONValue) -> [UInt8] {
        Array((JSONValue.object(["jsonrpc": .string("2.0"), "id": .int(id), "method": .string(method), "params": params]).serialized + "\n").utf8)
    }

    /// A notification line (with its "\n").
    public static func notificationLine(method: String, params: JSONValue) -> [UInt8] {
        Array((JSONValue.object(["jsonrpc": .string("2.0"), "method": .string(method), "params": params]).serialized + "\n").utf8)
    }

    /// A response line to the agent's request `id`.
    public static func responseLine(id: JSONValue, result: Result<JSONValue, JSONRPCError>) -> [UInt8] {
        let body: JSONValue
        switch result {
        case .success(let value):
            body = .object(["jsonrpc": .string("2.0"), "id": id, "result": value])
        case .failure(let error):
            body = .object([
                "jsonrpc": .string("2.0"), "id": id,
                "error": .object(["code": .int(error.code), "message": .string(error.message)]),
            ])
        }
        return Array((body.serialized + "\n").utf8)
    }
}

/// The agent's stderr, kept lossily in a fixed ring (an undrained pipe would wedge
/// the agent; an unbounded buffer would let it fill memory).
public struct StderrRing: Sendable {
    public static let defaultCapacity = 8 * 1024
    /// The longest last line kept.
    public static let lastLineCapacity = 512

    public let capacity: Int
    private var storage: [UInt8] = []
    private var next = 0
    private var wrapped = false
    private var currentLine: [UInt8] = []
    private var lastCompleteLine: [UInt8] = []

    public init(capacity: Int = StderrRing.defaultCapacity) {
        self.capacity = capacity
        storage.reserveCapacity(capacity)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            if storage.count < capacity {
                storage.append(byte)
            } else {
                storage[next] = byte
                wrapped = true
            }
            next = (next + 1) % capacity
            if byte == 0x0A {
                if !currentLine.isEmpty { lastCompleteLine = currentLine }
                currentLine = []
            } else if currentLine.count < StderrRing.lastLineCapacity {
                currentLine.append(byte)
            }
        }
    }

    /// The last non-empty line (the unfinished one if any), invalid UTF-8 replaced.
    public var lastLine: String {
        String(decoding: currentLine.isEmpty ? lastCompleteLine : currentLine, as: UTF8.self)
    }

    /// The last `capacity` bytes at most, starting at a line boundary when wrapped.
    public var tail: String {
        var bytes = wrapped ? Array(storage[next...] + storage[..<next]) : storage
        if wrapped, let newline = bytes.firstIndex(of: 0x0A) {
            bytes.removeSubrange(...newline)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
