#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwitchboardProtocol

/// What the service manager (systemd, or anything speaking its protocols) handed
/// the process: an inherited listening socket, a notification socket, a watchdog.
///
/// Read from the environment once, by ``fromEnvironment(listenFDName:)``, which also
/// clears the variables so that children (exec turns) never see them. Without any of
/// them the server binds its own socket and notifies nobody.
public struct SystemdSettings: Sendable, Equatable {
    /// A listening `AF_UNIX` stream socket passed by socket activation; the server
    /// adopts it instead of binding ``ServerConfiguration/socketPath`` and never
    /// unlinks its path (the socket belongs to the service manager).
    public var listeningDescriptor: Int32?
    /// The path the inherited socket is bound to (for logs), when it has one.
    public var listeningPath: String?
    /// `$NOTIFY_SOCKET`: a path, or `@name` for an abstract address.
    public var notifySocket: String?
    /// How often `WATCHDOG=1` is sent: half of `$WATCHDOG_USEC`.
    public var watchdogInterval: Duration?
    /// How often the `STATUS=` line is refreshed.
    public var statusInterval: Duration = .seconds(5)

    public init(
        listeningDescriptor: Int32? = nil,
        listeningPath: String? = nil,
        notifySocket: String? = nil,
        watchdogInterval: Duration? = nil
    ) {
        self.listeningDescriptor = listeningDescriptor
        self.listeningPath = listeningPath
        self.notifySocket = notifySocket
        self.watchdogInterval = watchdogInterval
    }

    /// Reads `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`, `NOTIFY_SOCKET` and
    /// `WATCHDOG_USEC`/`WATCHDOG_PID`, then unsets all of them.
    ///
    /// - Parameter listenFDName: with `LISTEN_FDNAMES`, the name of the socket to
    ///   adopt (`FileDescriptorName=` of the .socket unit; systemd's default is the
    ///   unit's name).
    /// - Throws: `FAILED_PRECONDITION` with a clear message when the variables are
    ///   inconsistent or the passed descriptor is not a listening Unix stream socket.
    ///   `LISTEN_PID` naming another process means "not for us" and is ignored.
    public static func fromEnvironment(listenFDName: String) throws(SwitchboardError) -> SystemdSettings {
        let names = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]
        var environment: [String: String] = [:]
        for name in names {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        defer { for name in names { unsetenv(name) } }

        var settings = SystemdSettings()
        switch try SocketActivation.parse(environment: environment, pid: getpid(), wantedName: listenFDName) {
        case .notActivated:
            break
        case .adopt(let descriptor, let passed):
            settings.listeningPath = try SocketActivation.checkListeningSocket(descriptor)
            // Every passed descriptor stays out of exec'd children.
            for fd in passed { _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC) }
            settings.listeningDescriptor = descriptor
        }
        if let notify = environment["NOTIFY_SOCKET"], !notify.isEmpty {
            settings.notifySocket = notify
        }
        settings.watchdogInterval = try SocketActivation.watchdogInterval(environment: environment, pid: getpid())
        return settings
    }
}
