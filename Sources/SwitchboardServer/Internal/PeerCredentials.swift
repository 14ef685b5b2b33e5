#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// Who is on the other end of a Unix socket, as the kernel recorded it at
/// `connect()` (SO_PEERCRED): used as a session's owner and in logs.
struct PeerCredentials: Sendable, CustomStringConvertible {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32

    /// When the kernel could not tell (not a Unix socket): nobody in particular.
    static let unknown = PeerCredentials(pid: 0, uid: UInt32.max, gid: UInt32.max)

    var description: String { "pid=\(pid) uid=\(uid) gid=\(gid)" }

    /// Reads SO_PEERCRED. NIO has no typed option for it, and Glibc hides
    /// `struct ucred` behind `_GNU_SOURCE`, so the value is read into a struct
    /// with the same layout.
    static func read(from channel: any Channel) -> EventLoopFuture<PeerCredentials> {
        #if os(Linux)
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(.unknown)
        }
        let raw: EventLoopFuture<UnixCredentials> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET),
            name: SocketOptionName(SO_PEERCRED)
        )
        return raw
            .map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
            .recover { _ in .unknown }
        #else
        return channel.eventLoop.makeSucceededFuture(.unknown)
        #endif
    }
}

#if os(Linux)
/// Layout-identical to Linux's `struct ucred { pid_t pid; uid_t uid; gid_t gid; }`.
private struct UnixCredentials: Sendable {
    var pid: pid_t
    var uid: uid_t
    var gid: gid_t
}
#endif
