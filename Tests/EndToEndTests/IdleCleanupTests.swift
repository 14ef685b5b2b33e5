import Foundation
import Testing

extension EndToEnd {
    @Suite("Idle cleanup")
    struct IdleCleanup {
        /// With a 1 s idle timeout swept every 200 ms, an idle session goes away,
        /// while a session whose turn runs for longer than that (with a prompt
        /// queued behind it) survives every sweep and finishes both turns.
        @Test("idle sessions are removed; busy and queued sessions are not")
        func idleSessionsGoBusyOnesStay() async throws {
            try await withServer(["--idle-timeout", "1s", "--idle-sweep-interval", "200ms", "--echo-delay", "\(TestTimeScale.ms(100))ms"]) { server in
                for id in ["idle", "busy"] {
                    let create = try await server.cli(["session", "create", "--id", id])
                    try #require(create.status == 0, "\(create)")
                }
                // 25 tokens at 100 ms: about 2.5 s (times the time scale), well past the
                // 1 s idle timeout.
                let longWords = (1...25).map { "w\($0)" }
                let long = try server.startCLI(["prompt", "--session", "busy"] + longWords)
                let longStarted = ContinuousClock.now
                let busy = try await eventually(timeout: TestTimeScale.seconds(10)) {
                    let get = try await server.cli(["session", "get", "busy", "--json"])
                    return try get.status == 0 && jsonState(try jsonObject(get.stdout)["state"], is: "busy")
                }
                try #require(busy, "session busy never became busy")
                let queued = try server.startCLI(["prompt", "--session", "busy", "q1", "q2", "q3"])
                let isQueued = try await eventually(timeout: TestTimeScale.seconds(10)) {
                    let get = try await server.cli(["session", "get", "busy", "--json"])
                    return try get.status == 0 && jsonInt(try jsonObject(get.stdout)["queued_prompts"]) == 1
                }
                #expect(isQueued, "the second prompt never showed up as queued")

                // The idle session disappears (polled with `list`, which does not touch it).
                let gone = try await eventually(timeout: TestTimeScale.seconds(8), interval: .milliseconds(100)) {
                    let list = try await server.cli(["session", "list", "--json"])
                    let ids = (try jsonObject(list.stdout)["sessions"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                    return !ids.contains("idle")
                }
                #expect(gone, "idle session was never cleaned up")
                let getIdle = try await server.cli(["session", "get", "idle"])
                #expect(getIdle.status == 15, "expected NOT_FOUND (15): \(getIdle)")

                // Several sweeps past the busy session's idle timeout, while its turn still runs.
                let pastTimeout = longStarted + .milliseconds(1800)
                if ContinuousClock.now < pastTimeout { try await Task.sleep(until: pastTimeout) }
                #expect(long.isRunning, "the long turn ended too early to prove anything")
                let getBusy = try await server.cli(["session", "get", "busy", "--json"])
                #expect(getBusy.status == 0, "busy session was removed while its turn ran: \(getBusy)")

                let longResult = await long.finish(timeout: TestTimeScale.seconds(20))
                #expect(longResult.status == 0, "\(longResult)")
                #expect(words(longResult.stdout) == longWords, "\(longResult)")
                let queuedResult = await queued.finish(timeout: TestTimeScale.seconds(20))
                #expect(queuedResult.status == 0, "\(queuedResult)")
                #expect(words(queuedResult.stdout) == ["q1", "q2", "q3"], "\(queuedResult)")

                // Once idle, it too is cleaned up.
                let busyGone = try await eventually(timeout: TestTimeScale.seconds(8), interval: .milliseconds(100)) {
                    let list = try await server.cli(["session", "list", "--json"])
                    let ids = (try jsonObject(list.stdout)["sessions"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                    return !ids.contains("busy")
                }
                #expect(busyGone, "session busy was not cleaned up after its turns ended")
            }
        }
    }
}
