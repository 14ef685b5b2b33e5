import Foundation
import SwitchboardPersistence
import SwitchboardProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The claim on a state directory: one holder at a time, across processes and
/// inside one, released by close or by the holder's death, and never kept
/// alive by a child process.
@Suite("State directory lock")
struct DirectoryLockTests {
    private func expectInUse(_ directory: ScratchDirectory, by pid: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) {
            _ = try openStore(directory)
        } throws: { error in
            guard let error = error as? SwitchboardError else { return false }
            return error.code == .failedPrecondition
                && error.message == "state directory \(directory.state) is in use by another switchboard (pid \(pid))"
        }
    }

    /// Starts the helper in `hold` mode and waits for it to hold the directory.
    private func startHolder(_ directory: ScratchDirectory) async throws -> (process: Process, stdin: Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try crashHelperPath())
        process.arguments = [directory.state, "hold"]
        let input = closeOnExecPipe()
        let output = closeOnExecPipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let line: String = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var text = Data()
                while !text.contains(UInt8(ascii: "\n")) {
                    let more = output.fileHandleForReading.availableData
                    if more.isEmpty { break }
                    text.append(more)
                }
                continuation.resume(returning: String(decoding: text, as: UTF8.self))
            }
        }
        try #require(line == "holding\n", "the holder printed \(line.debugDescription)")
        return (process, input)
    }

    private func reap(_ process: Process) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                process.waitUntilExit()
                continuation.resume()
            }
        }
    }

    @Test("another process's store is refused, naming its pid; its clean close releases the directory")
    func anotherProcessHolds() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let (holder, stdin) = try await startHolder(directory)
        expectInUse(directory, by: holder.processIdentifier)
        try stdin.fileHandleForWriting.close()
        await reap(holder)
        #expect(holder.terminationReason == .exit && holder.terminationStatus == 0)
        let store = try openStore(directory)
        try await store.close()
    }

    @Test("a holder killed with SIGKILL leaves no stale lock")
    func killedHolder() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let (holder, stdin) = try await startHolder(directory)
        kill(holder.processIdentifier, SIGKILL)
        await reap(holder)
        try stdin.fileHandleForWriting.close()
        #expect(holder.terminationReason == .uncaughtSignal)
        let store = try openStore(directory)
        try await store.close()
    }

    @Test("this process's own store is refused a second time, and a store held here blocks another process")
    func sameProcess() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory)
        expectInUse(directory, by: getpid())
        // The refused attempt must not have dropped the lock this process holds.
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: try crashHelperPath())
        probe.arguments = [directory.state, "hold"]
        let output = closeOnExecPipe()
        probe.standardOutput = output
        probe.standardError = output
        probe.standardInput = FileHandle.nullDevice
        try probe.run()
        await reap(probe)
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(probe.terminationStatus != 0)
        #expect(printed.contains("is in use by another switchboard (pid \(getpid()))"), "\(printed)")
        try await store.close()
        let reopened = try openStore(directory)
        try await reopened.close()
    }

    /// The CI failure this guards against: with `flock`, a child forked (by any
    /// thread) while the store was open shared the lock's open file description,
    /// so the closed store's lock stayed held until the child exec'd or exited.
    /// The helper forks, closes and reopens (this process never forks: its child
    /// would hold copies of every descriptor the concurrent tests have open).
    @Test("a child forked while the store was open does not keep the directory after close")
    func forkedChildDoesNotHoldTheLock() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let helper = Process()
        helper.executableURL = URL(fileURLWithPath: try crashHelperPath())
        helper.arguments = [directory.state, "fork"]
        let output = closeOnExecPipe()
        helper.standardOutput = output
        helper.standardError = FileHandle.nullDevice
        helper.standardInput = FileHandle.nullDevice
        try helper.run()
        let printed: String = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let data = output.fileHandleForReading.readDataToEndOfFile()
                helper.waitUntilExit()
                continuation.resume(returning: String(decoding: data, as: UTF8.self))
            }
        }
        #expect(printed == "reopened\n")
        #expect(helper.terminationReason == .exit && helper.terminationStatus == 0)
        // The helper released the directory on its way out.
        let store = try openStore(directory)
        try await store.close()
    }
}
