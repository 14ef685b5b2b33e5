import Foundation
import Glibc
import SwitchboardProtocol
import Testing

/// A small tmpfs mounted for one test (root only), unmounted when released.
private final class SmallDisk: Sendable {
    let path: String

    /// Mounts a tmpfs of `size` ("2m") on a new directory in `scratch`; nil with
    /// the reason when that is not possible here (not root, no mount).
    /// Whether this machine lets the tests mount a tmpfs (root, and mounting
    /// permitted), probed once with a tiny one.
    static let canMount: Bool = {
        guard getuid() == 0, let scratch = try? TempDirectory() else { return false }
        defer { scratch.remove() }
        let (disk, _) = mount(size: "64k", in: scratch)
        disk?.unmount()
        return disk != nil
    }()

    static func mount(size: String, in scratch: TempDirectory) -> (SmallDisk?, String) {
        guard getuid() == 0 else { return (nil, "not root: cannot mount a tmpfs") }
        let path = scratch.path + "/disk"
        guard mkdir(path, 0o700) == 0 else { return (nil, "mkdir \(path): errno \(errno)") }
        let (status, output) = run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size),mode=0700", "tmpfs", path])
        guard status == 0 else { return (nil, "mount -t tmpfs failed (\(status)): \(output)") }
        return (SmallDisk(path: path), "")
    }

    private init(path: String) {
        self.path = path
    }

    /// Lazy: a process that still has a file open there cannot keep it mounted.
    func unmount() {
        _ = Self.run("/bin/umount", ["-l", path])
    }

    /// Writes `bytes` bytes to a new file there (the filler the test frees later).
    func fill(_ name: String, bytes: Int) throws {
        let data = Data(repeating: 0x5A, count: bytes)
        guard FileManager.default.createFile(atPath: path + "/" + name, contents: data) else {
            throw E2EError("cannot write the filler file \(path)/\(name)")
        }
    }

    private static func run(_ executable: String, _ arguments: [String]) -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            return (-1, "\(error)")
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }
}

extension EndToEnd {
    @Suite("A full disk")
    struct FullDisk {
        /// The exit status of a CLI call that ended with `code`.
        static func exit(_ code: StatusCode) -> Int32 { 10 + Int32(code.rawValue) }

        /// The scenario: the state directory on a 2 MiB tmpfs, prompts of
        /// 2,000 words until the disk is full. Every prompt that ended OK is in
        /// history after a restart with its whole output; prompts while the disk
        /// is full fail UNAVAILABLE naming it, health and status say so; once a
        /// filler file is deleted the server takes prompts again by itself.
        @Test(
            "state on a 2 MiB tmpfs: every OK prompt survives a restart whole; prompts fail clearly while full; freed space is used without a restart",
            // Covered without root by the persistence tests' "A store that cannot
            // write" suite (SQLite's own SQLITE_FULL, through a seam).
            .enabled(if: SmallDisk.canMount, "needs root and permission to mount a tmpfs")
        )
        func fullDiskKeepsEveryOK() async throws {
            let scratch = try TempDirectory()
            defer { scratch.remove() }
            let (mounted, reason) = SmallDisk.mount(size: "2m", in: scratch)
            let disk = try #require(mounted, "\(reason)")
            defer { disk.unmount() }
            // Freed later to give the server room again.
            try disk.fill("filler", bytes: 512 << 10)
            let state = disk.path + "/state"

            var server: ServerProcess? = try await ServerProcess.start(["--state-dir", state], in: scratch)
            defer { server?.kill() }
            let first = try #require(server)
            let created = try await first.cli(["session", "create", "--id", "full"])
            try #require(created.status == 0, "\(created)")

            // Prompts of 2,000 words until one fails (the disk holds a few dozen).
            var answeredOK: [String] = []
            var failure: CLIResult?
            for index in 1...200 {
                let prompt = (1...2000).map { "p\(index)w\($0)" }.joined(separator: " ")
                let result = try await first.cli(["prompt", "--session", "full", "-"], stdin: prompt, timeout: .seconds(60))
                if result.status == 0 {
                    #expect(words(result.stdout) == words(prompt), "prompt \(index) answered OK with other output")
                    answeredOK.append(prompt)
                } else {
                    failure = result
                    break
                }
            }
            let failed = try #require(failure, "the 2 MiB disk never filled")
            try #require(!answeredOK.isEmpty, "the first prompt already failed: \(failed)")
            print("full disk: \(answeredOK.count) prompts answered OK, then: \(failed.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            #expect(failed.status == Self.exit(.unavailable), "\(failed)")
            #expect(failed.stderr.contains("disk is full"), "\(failed)")

            // While full: prompts and creates fail clearly; health and status say why.
            let refused = try await first.cli(["prompt", "--session", "full", "one", "more"])
            #expect(refused.status == Self.exit(.unavailable), "\(refused)")
            #expect(refused.stderr.contains("disk is full"), "\(refused)")
            let create = try await first.cli(["session", "create", "--id", "while-full"])
            #expect(create.status == Self.exit(.unavailable), "\(create)")
            #expect(create.stderr.contains("disk is full"), "\(create)")
            let health = try await first.cli(["health"])
            #expect(health.status == 2, "\(health)")
            #expect(health.stdout.contains("NOT_SERVING") && health.stdout.contains("disk is full"), "\(health)")
            let status = try await first.cli(["status", "--json"])
            try #require(status.status == 0, "\(status)")
            let storeError = try jsonObject(status.stdout)["store_error"] as? String
            #expect(storeError?.contains("disk is full") == true, "\(status)")
            // Reads keep working.
            let list = try await first.cli(["session", "list"])
            #expect(list.status == 0, "\(list)")

            // Space comes back: the server notices by itself.
            try FileManager.default.removeItem(atPath: disk.path + "/filler")
            var after: CLIResult?
            let recovered = try await eventually(timeout: TestTimeScale.seconds(20), interval: .milliseconds(250)) {
                let result = try await first.cli(["prompt", "--session", "full", "after", "freeing"])
                after = result
                return result.status == 0
            }
            try #require(recovered, "no prompt succeeded after space was freed: \(String(describing: after))\n\(first.log.suffix(2000))")
            #expect(words(after?.stdout ?? "") == ["after", "freeing"])
            answeredOK.append("after freeing")
            let healthy = try await first.cli(["health"])
            #expect(healthy.status == 0 && healthy.stdout == "SERVING\n", "\(healthy)")
            let cleared = try await first.cli(["status", "--json"])
            #expect(try jsonObject(cleared.stdout)["store_error"] as? String == "", "\(cleared)")

            // Every prompt that was answered OK is there after a restart, whole.
            let stopped = await first.stop(timeout: .seconds(30))
            #expect(stopped != nil, "the server did not stop on SIGTERM")
            server = nil
            let restarted = try await ServerProcess.start(["--state-dir", state], in: scratch)
            server = restarted
            let history = try await restarted.cli(["session", "history", "full", "--all", "--output", "--json"], timeout: .seconds(60))
            try #require(history.status == 0, "\(history.stderr)")
            let turns = try #require(try jsonObject(history.stdout)["turns"] as? [[String: Any]])
            var kept: [String: [String: Any]] = [:]
            for turn in turns {
                if let prompt = turn["prompt"] as? String { kept[prompt] = turn }
            }
            for (index, prompt) in answeredOK.enumerated() {
                let turn = try #require(kept[prompt], "OK prompt \(index + 1) of \(answeredOK.count) is gone after the restart")
                let summary = try #require(turn["summary"] as? [String: Any])
                #expect(jsonCode(summary["code"]) == .ok, "prompt \(index + 1): \(summary)")
                #expect(turn["output_text"] as? String == prompt, "prompt \(index + 1): output not whole")
            }
        }
    }
}
