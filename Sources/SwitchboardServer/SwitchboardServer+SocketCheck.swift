import SwitchboardProtocol

extension SwitchboardServer {
    /// Checks, without touching the disk, that a server could bind `path`: the
    /// path fits a Unix socket address, is not a live server's socket and is not
    /// a file of another kind (a stale socket is fine: binding replaces it).
    ///
    /// `serve` calls this before it creates anything (the state directory
    /// included), so a start refused because another server answers on the
    /// path leaves nothing behind. Binding checks again: the answer can change.
    public static func checkSocketPath(_ path: String) throws(SwitchboardError) {
        _ = try SocketFile.check(path: path)
    }
}
