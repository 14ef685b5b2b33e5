/// Who is asking, as the transport authenticated it (the peer's uid from
/// SO_PEERCRED and what the server's policy grants it).
///
/// The registry enforces ownership with it: a session belongs to the uid that
/// created it, and only that uid or an administrator may read, prompt, attach to,
/// list or close it (PERMISSION_DENIED otherwise).
public struct Caller: Hashable, Sendable {
    public var uid: UInt32
    public var isAdmin: Bool

    public init(uid: UInt32, isAdmin: Bool) {
        self.uid = uid
        self.isAdmin = isAdmin
    }

    /// The server itself (startup, tests): may do anything.
    public static let server = Caller(uid: 0, isAdmin: true)

    /// Whether this caller may act on a session owned by `ownerUID`.
    public func mayAccess(ownerUID: UInt32) -> Bool {
        isAdmin || uid == ownerUID
    }
}
