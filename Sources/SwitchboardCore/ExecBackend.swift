#if canImport(Glibc)
import Glibc
#endif
import SwitchboardProtocol

/// Runs a configured command per turn: the prompt on its stdin, its stdout streamed
/// as output as it arrives.
///
/// The command runs in its own process group. Exit status 0 is OK ("exit:0"); exit N
/// is UNKNOWN with the last stderr line; death by a signal we did not send is
/// ABORTED; a command that cannot start is FAILED_PRECONDITION. When the turn is
/// cancelled (close, deadline, stall, vanished client) the whole group gets SIGTERM,
/// then SIGKILL after `killGrace`; the child is always reaped, and the turn ends no
/// later than about `killGrace` after the cancellation. All blocking I/O happens on a
/// dedicated thread per turn, never on the cooperative pool.
public struct ExecBackend: Backend {
    public var command: [String]
    public var killGrace: Duration
    /// The command's whole environment; `nil` inherits the server's. Either way
    /// `SWITCHBOARD_SESSION_ID` and `SWITCHBOARD_TURN_ID` are added.
    public var environment: [String: String]?

    public init(command: [String], killGrace: Duration = .seconds(5), environment: [String: String]? = nil) {
        self.command = command
        self.killGrace = killGrace
        self.environment = environment
    }

    public func runTurn(_ turn: TurnRequest, output: TurnOutput) async throws -> String {
        try Task.checkCancellation()
        let process: ExecTurnProcess
        do {
            process = try ExecTurnProcess()
        } catch {
            throw SwitchboardError(code: .failedPrecondition, message: "cannot start command: \(error.message)")
        }
        process.start(
            arguments: command,
            environment: environmentEntries(for: turn),
            input: Array(turn.prompt.utf8),
            killGrace: max(.zero, killGrace)
        )
        let (result, outputError) = await withTaskCancellationHandler {
            await pump(process, into: output)
        } onCancel: {
            process.terminate()
        }

        if let failure = result.spawnFailure {
            throw SwitchboardError(code: .failedPrecondition, message: "cannot start command: \(failure)")
        }
        if let outputError { throw outputError }
        if Task.isCancelled || result.signalledByUs { throw CancellationError() }
        switch result.termination {
        case .exited(0)?:
            return "exit:0"
        case .exited(let status)?:
            var message = "command exited with status \(status)"
            if let line = Self.lastLine(of: result.stderrTail) { message += ": \(line)" }
            throw SwitchboardError(code: .unknown, message: message)
        case .signaled(let signal)?:
            var message = "command killed by signal \(signal) (\(String(cString: strsignal(signal))))"
            if let line = Self.lastLine(of: result.stderrTail) { message += ": \(line)" }
            throw SwitchboardError(code: .aborted, message: message)
        case nil:
            throw SwitchboardError(code: .internal, message: "command ended without an exit status")
        }
    }

    /// Forwards output until the process has ended and been reaped. A failing write
    /// (turn ended, receiver gone) terminates the command; output after that is
    /// dropped but still consumed so the thread is never stuck.
    private func pump(_ process: ExecTurnProcess, into output: TurnOutput) async -> (ExecTurnProcess.Result, (any Error)?) {
        var outputError: (any Error)?
        while true {
            switch await process.nextEvent() {
            case .output(let bytes):
                if outputError == nil {
                    do {
                        try await output.write(bytes)
                    } catch {
                        outputError = error
                        process.terminate()
                    }
                }
                process.consumed(byteCount: bytes.count)
            case .finished(let result):
                return (result, outputError)
            }
        }
    }

    private func environmentEntries(for turn: TurnRequest) -> [String] {
        var variables: [String: String] = environment ?? Self.inheritedEnvironment()
        variables["SWITCHBOARD_SESSION_ID"] = turn.sessionID
        variables["SWITCHBOARD_TURN_ID"] = turn.turnID
        return variables.map { "\($0.key)=\($0.value)" }
    }

    private static func inheritedEnvironment() -> [String: String] {
        var variables: [String: String] = [:]
        var entry: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let separator = text.firstIndex(of: "=") {
                variables[String(text[..<separator])] = String(text[text.index(after: separator)...])
            }
            entry += 1
        }
        return variables
    }

    /// The last non-empty line of `stderr`, trimmed and at most 300 characters.
    /// A NUL becomes U+FFFD, as invalid UTF-8 does: the line goes into a status
    /// message, a string field, where a NUL is refused (and a worker's `failed`
    /// carrying one would be refused, leaving its turn without an end).
    static func lastLine(of stderr: [UInt8]) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(stderr.count)
        for byte in stderr {
            if byte == 0 { bytes += [0xEF, 0xBF, 0xBD] } else { bytes.append(byte) }
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let line = text.split(whereSeparator: \.isNewline).last(where: { !$0.allSatisfy(\.isWhitespace) }) else {
            return nil
        }
        let trimmed = line.trimmingPrefix(while: \.isWhitespace)
        var result = String(trimmed)
        while result.last?.isWhitespace == true { result.removeLast() }
        return result.count > 300 ? String(result.prefix(300)) + "…" : result
    }
}
