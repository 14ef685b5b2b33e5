/// The embedded default backend: streams the prompt back, one word at a time.
///
/// Each token is a run of non-whitespace plus the whitespace after it (leading
/// whitespace is a token of its own), so the chunks concatenate to exactly the
/// prompt. With a `tokenDelay` it sleeps that long between tokens, which makes it a
/// convenient stand-in for a slow model.
public struct EchoBackend: Backend {
    public var tokenDelay: Duration

    public init(tokenDelay: Duration = .zero) {
        self.tokenDelay = tokenDelay
    }

    public func runTurn(_ turn: TurnRequest, output: TurnOutput) async throws -> String {
        for (index, token) in Self.tokens(of: turn.prompt).enumerated() {
            if index > 0, tokenDelay > .zero {
                try await Task.sleep(for: tokenDelay)
            }
            try Task.checkCancellation()
            try await output.write(Array(token.utf8))
        }
        return "end_turn"
    }

    /// Splits `text` into word-plus-trailing-whitespace tokens.
    static func tokens(of text: String) -> [Substring] {
        var tokens: [Substring] = []
        var start = text.startIndex
        var inTrailingWhitespace = false
        for index in text.indices {
            let isSpace = text[index].isWhitespace
            if inTrailingWhitespace, !isSpace {
                tokens.append(text[start..<index])
                start = index
                inTrailingWhitespace = false
            } else if isSpace {
                inTrailingWhitespace = true
            }
        }
        if start < text.endIndex { tokens.append(text[start...]) }
        return tokens
    }
}
