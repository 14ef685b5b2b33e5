/// A failure of the end-to-end harness itself (missing binary, timeout, server
/// that would not start), with a message that says what to look at.
struct E2EError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
