import Foundation
import SwitchboardAgentHost

/// The project's ACP test agents (Tests/Agents) on the official Python SDK in
/// .venv-acp, which `scripts/bootstrap.sh` creates.
enum AgentFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let python = root + "/.venv-acp/bin/python"
    static let agents = root + "/Tests/Agents"

    static let available: Bool = {
        let present = FileManager.default.isExecutableFile(atPath: python)
        if !present {
            print("SwitchboardAgentHostTests: skipping the agent tests: \(python) is missing (run scripts/bootstrap.sh)")
        }
        return present
    }()

    /// How much slower this run is (the TSan pass sets SWITCHBOARD_TEST_TIME_SCALE).
    static let scale: Int = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_TIME_SCALE"].flatMap { Int($0) }.map { max(1, $0) } ?? 1

    static func seconds(_ value: Int) -> Duration { .seconds(value * scale) }
    static func milliseconds(_ value: Int) -> Duration { .milliseconds(value * scale) }

    /// Python starts in about a second of CPU; several agents start at once here.
    static var handshakeTimeout: Duration { seconds(60) }

    static func launch(_ script: String, _ arguments: [String] = [], maxLineBytes: Int = AgentLaunch.defaultMaxLineBytes) -> AgentLaunch {
        let path = script.hasPrefix("/") ? script : agents + "/" + script
        return AgentLaunch(command: [python, path] + arguments, cwd: root, maxLineBytes: maxLineBytes)
    }

    static func connect(
        _ script: String,
        _ arguments: [String] = [],
        maxLineBytes: Int = AgentLaunch.defaultMaxLineBytes,
        policy: AgentPermissionPolicy = .deny
    ) async throws -> (AgentConnection, AgentHandshake) {
        let connection = try AgentConnection.spawn(launch: launch(script, arguments, maxLineBytes: maxLineBytes), permissionPolicy: policy)
        let handshake = try await connection.handshake(cwd: root, timeout: handshakeTimeout)
        return (connection, handshake)
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "agenthost-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Live (not zombie) processes whose process group is `group`, from /proc.
    static func liveMembers(ofGroup group: pid_t) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var members: [pid_t] = []
        for entry in entries {
            guard let pid = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // After "comm)": state, ppid, pgrp.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, let pgrp = pid_t(fields[2]) else { continue }
            if pgrp == group, fields[0] != "Z", fields[0] != "X" { members.append(pid) }
        }
        return members
    }

    static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].split(separator: " ").first
        return state != "Z" && state != "X"
    }

    /// Runs blocking `work` on a thread of its own, off Swift's small cooperative pool.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: work()) }
        }
    }

    /// Polls `condition` until it holds or `limit` passes (a hang guard, not a timing assert).
    static func eventually(within limit: Duration, _ condition: () -> Bool) async -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }
}

/// Collects a prompt's updates (called on the reader thread).
final class UpdateLog: Sendable {
    private let updates = Mutex<[AgentUpdate]>([])

    var all: [AgentUpdate] { updates.withLock { $0 } }

    var text: String {
        all.compactMap { if case .messageText(let text) = $0 { text } else { nil } }.joined()
    }

    func record(_ update: AgentUpdate) {
        updates.withLock { $0.append(update) }
    }
}

import Synchronization
