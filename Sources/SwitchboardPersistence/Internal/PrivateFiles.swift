#if canImport(Glibc)
import Glibc
#endif
import Logging
import SwitchboardProtocol

/// Keeps the state database readable by the server's user only.
///
/// The database holds the prompts and output of every uid's sessions. The store
/// makes the state directory 0700 only when it creates it; `--state-dir` may
/// name an existing 0755 directory, where SQLite would create the database 0644
/// (less the umask) and give its `-wal` and `-shm` files the same mode. So the
/// database file is created 0600 before SQLite opens it (SQLite then gives
/// `-wal` and `-shm` that mode too), and an existing database file, `-wal` or
/// `-shm` that group or others may access is narrowed to its owner's bits with a
/// warning. Only the mode changes, never a byte of the files; a file that
/// cannot be narrowed (another user's) is refused.
enum PrivateFiles {
    /// Warns when `directory` lets group or others in: its files are private,
    /// but others may still see their names or add files of their own.
    static func warnIfShared(directory: String, logger: Logger) {
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & 0o077 != 0 else { return }
        logger.warning(
            "state directory is accessible by group or others; its database files are kept 0600, but consider chmod 700",
            metadata: ["path": "\(directory)", "mode": "\(octal(info.st_mode & 0o7777))"]
        )
    }

    /// Creates the database file 0600 when missing, and takes group and other
    /// access away from the database, `-wal` and `-shm` files that have it.
    /// Call before SQLite opens the file for writing.
    static func secureDatabase(path: String, logger: Logger) throws(SwitchboardError) {
        try secure(path, create: true, logger: logger)
        try secure(path + "-wal", create: false, logger: logger)
        try secure(path + "-shm", create: false, logger: logger)
    }

    private static func secure(_ path: String, create: Bool, logger: Logger) throws(SwitchboardError) {
        // O_NONBLOCK: a FIFO planted at the path must not hang the open.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (create ? O_CREAT : 0), 0o600)
        guard fd >= 0 else {
            let error = errno
            if error == ENOENT && !create { return }
            throw failure("cannot open state database file \(path)", error)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = errno
            throw failure("cannot stat state database file \(path)", error)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw SwitchboardError(
                code: .failedPrecondition,
                message: "state database file \(path) is not a regular file; refusing to open it (nothing was changed)"
            )
        }
        let mode = info.st_mode & 0o7777
        guard mode & 0o077 != 0 else { return }
        let narrowed = mode & 0o700
        guard fchmod(fd, narrowed) == 0 else {
            let error = errno
            throw failure("cannot chmod state database file \(path) to \(octal(narrowed))", error)
        }
        logger.warning(
            "state database file was accessible by group or others; its mode is now \(octal(narrowed))",
            metadata: ["path": "\(path)", "mode": "\(octal(mode))"]
        )
    }

    private static func failure(_ what: String, _ error: Int32) -> SwitchboardError {
        SwitchboardError(code: .failedPrecondition, message: "\(what): \(String(cString: strerror(error)))")
    }

    private static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
