import SwitchboardProtocol

/// A session's kept turns, oldest first, one `ListTurns` page at a time.
///
/// Each page is fetched when the previous one has been consumed. Pages follow the
/// server's page tokens, so turns that finish while the history is walked are
/// appended at the end, never repeated. A failed page throws the server's error.
public struct TurnHistory: AsyncSequence, Sendable {
    public typealias Element = TurnHistoryEntry
    public typealias Failure = any Error

    let client: SwitchboardClient
    let request: ListTurnsRequest

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(client: client, request: request)
    }

    /// Every turn, collected into one array.
    public func collect() async throws -> [TurnHistoryEntry] {
        var turns: [TurnHistoryEntry] = []
        for try await turn in self { turns.append(turn) }
        return turns
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let client: SwitchboardClient
        var request: ListTurnsRequest
        var page: [TurnHistoryEntry] = []
        var index = 0
        var done = false

        init(client: SwitchboardClient, request: ListTurnsRequest) {
            self.client = client
            self.request = request
        }

        public mutating func next() async throws -> TurnHistoryEntry? {
            while index == page.count {
                if done { return nil }
                let response = try await client.listTurns(request)
                page = response.turns
                index = 0
                if response.nextPageToken.isEmpty {
                    done = true
                } else if response.nextPageToken == request.pageToken {
                    throw SwitchboardError(code: .internal, message: "ListTurns returned the same page token again: \(response.nextPageToken)")
                }
                request.pageToken = response.nextPageToken
            }
            defer { index += 1 }
            return page[index]
        }
    }
}
