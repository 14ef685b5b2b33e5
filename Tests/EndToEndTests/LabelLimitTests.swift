import Foundation
import Glibc
import Testing

extension EndToEnd {
    /// Issue 12, item 4: an unprivileged user on a 0666 socket could make root's
    /// `status` and `session list` fail (RESOURCE_EXHAUSTED, "response of 4200884
    /// bytes exceeds the client's maximum frame size"), across restarts, with
    /// sessions carrying huge labels. Now labels are bounded and both listings fit
    /// the reader's frame.
    @Suite("Another user's labels cannot break root's status and session list", .enabled(if: OtherUser.isAvailable, "needs root, setpriv and useradd (see the printed reason)"))
    struct LabelLimits {
        /// Exit code of the CLI for INVALID_ARGUMENT (10 + 3).
        static let invalidArgument: Int32 = 13
        /// Sessions of the largest allowed labels (about 25 KB each on the wire):
        /// 200 of them take about 5 MB, more than root's 4 MiB frame.
        static let filledSessions = 200

        static func sessionIDs(inJSON text: String) throws -> [String] {
            let sessions = try jsonObject(text)["sessions"] as? [[String: Any]] ?? []
            return sessions.compactMap { $0["id"] as? String }
        }

        /// Root's `status` (table and JSON) and `session list` all succeed and,
        /// between them, account for `expected` (sorted ids).
        static func expectRootListingsWork(_ server: ServerProcess, _ expected: [String], _ moment: String) async throws {
            let table = try await server.cli(["status"])
            #expect(table.status == 0, "\(moment): \(table.description.prefix(2000))")
            #expect(table.stdout.contains("more sessions not shown"), "\(moment): \(table.stdout.suffix(500))")

            let status = try await server.cli(["status", "--json"])
            try #require(status.status == 0, "\(moment): \(status.description.prefix(2000))")
            let document = try jsonObject(status.stdout)
            let shown = try sessionIDs(inJSON: status.stdout)
            let omitted = jsonInt(document["sessions_omitted"]) ?? -1
            #expect(jsonInt(document["sessions_total"]) == expected.count, "\(moment)")
            #expect(shown.count + omitted == expected.count, "\(moment): \(shown.count) shown, \(omitted) omitted")
            #expect(omitted > 0 && shown == Array(expected.prefix(shown.count)), "\(moment)")

            let list = try await server.cli(["session", "list", "--json"], timeout: .seconds(60))
            try #require(list.status == 0, "\(moment): \(list.description.prefix(2000))")
            #expect(try sessionIDs(inJSON: list.stdout) == expected, "\(moment)")
        }

        @Test("uid of an sbtest user: huge labels refused; 5 MB of sessions; root's status and session list keep working, also after a restart")
        func unprivilegedUserCannotBreakRootsListings() async throws {
            let carol = try OtherUser.ensure("sbtest-carol")
            var server = try await ServerProcess.start(["--socket-mode", "0666"])
            let directory = server.directory
            defer { server.kill() }
            chmod(directory.path, 0o711)
            let script = directory.path + "/labels.py"
            try Self.script.write(toFile: script, atomically: true, encoding: .utf8)
            chmod(script, 0o644)

            let created = try await server.cli(["session", "create", "--id", "roots", "--label", "team=docs"])
            try #require(created.status == 0, "\(created)")

            // The CLI (the Swift client) refuses a huge label before sending it.
            let huge = String(repeating: "x", count: 100_000)
            // (The id last: the output files are named after the last argument.)
            let cli = try await carol.cli(["session", "create", "--label", "k=\(huge)", "--id", "huge"], socket: server.socketPath, directory: directory)
            #expect(cli.status == Self.invalidArgument, "\(cli.description.prefix(1000))")
            #expect(cli.stderr.contains("of label \"k\" (labels[0])"), "\(cli.stderr.prefix(1000))")

            // The issue's attack, straight on the socket: the server refuses it.
            let attack = try await carol.run([OtherUser.python, script, "attack", server.socketPath], directory: directory)
            try #require(attack.status == 0, "\(attack)")
            let refusal = try jsonObject(attack.stdout)
            #expect(jsonInt(refusal["code"]) == 3, "\(attack.stdout)")
            #expect((refusal["message"] as? String)?.contains("of label \"k0\" (labels[0])") == true, "\(attack.stdout)")

            // What the rules allow, as much as fills root's frame and more.
            let fill = try await carol.run(
                [OtherUser.python, script, "fill", server.socketPath, "\(Self.filledSessions)"],
                directory: directory,
                timeout: .seconds(120)
            )
            try #require(fill.status == 0, "\(fill)")
            let report = try jsonObject(fill.stdout)
            #expect(jsonInt(report["created"]) == Self.filledSessions, "\(fill.stdout)")
            #expect(jsonInt(report["bytes_sent"]) ?? 0 > Int(4 << 20), "\(fill.stdout)")

            let expected = (["roots"] + (0..<Self.filledSessions).map { String(format: "u-%04d", $0) }).sorted()
            try await Self.expectRootListingsWork(server, expected, "before the restart")
            // The user's own view works as well.
            let own = try await carol.cli(["session", "list", "--json"], socket: server.socketPath, directory: directory, timeout: .seconds(60))
            #expect(own.status == 0, "\(own.description.prefix(1000))")
            #expect(try Self.sessionIDs(inJSON: own.stdout) == expected.filter { $0 != "roots" })

            // A restart keeps the sessions, and the listings keep working.
            _ = await server.stop()
            server = try await ServerProcess.start(["--socket-mode", "0666"], in: directory)
            try await Self.expectRootListingsWork(server, expected, "after the restart")
            _ = await server.stop()
            if ProcessInfo.processInfo.environment["SWITCHBOARD_E2E_KEEP"] == nil {
                directory.remove()
            }
        }

        /// `attack SOCKET`: CreateSession with 14 labels of 100,000 bytes (the
        /// issue's), printing the call's end {"code", "message"}. `fill SOCKET N`:
        /// N sessions u-0000… with 64 labels each at the longest key and value the
        /// rules allow; prints {"created", "failures", "bytes_sent"}.
        static let script = PythonWire.script(
            imports: #"""
                import json, socket, struct, sys

                """#,
            body: #"""

                def send(s, body):
                    s.sendall(struct.pack(">I", len(body)) + body)

                def receive(s):
                    def exactly(n):
                        data = b""
                        while len(data) < n:
                            chunk = s.recv(n - len(data))
                            if not chunk: raise EOFError("closed by the server")
                            data += chunk
                        return data
                    (length,) = struct.unpack(">I", exactly(4))
                    return parse(exactly(length))

                def connect(path):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(path)
                    send(s, field(2, number(1, 1) + number(2, 1) + field(3, b"labels-test")))
                    if 3 not in receive(s): raise RuntimeError("no Welcome")
                    return s

                def create(s, call_id, session_id, labels):
                    request = field(1, session_id.encode())
                    for key, value in labels:
                        request += field(2, field(1, key.encode()) + field(2, value.encode()))
                    start = field(1, b"/switchboard.v1.Sessions/CreateSession") + field(4, field(1, request)) + number(5, 1)
                    body = number(1, call_id) + field(4, start)
                    send(s, body)
                    while True:
                        frame = receive(s)
                        if frame.get(1) == call_id and 8 in frame:
                            end = parse(frame[8])
                            return end.get(1, 0), end.get(2, b"").decode(), len(body)

                mode, path = sys.argv[1], sys.argv[2]
                s = connect(path)
                if mode == "attack":
                    code, message, _ = create(s, 1, "attack", [("k%d" % i, "x" * 100000) for i in range(14)])
                    print(json.dumps({"code": code, "message": message}))
                else:
                    count = int(sys.argv[3])
                    prefix = ".".join(["p" * 62] * 4) + ".a"
                    created, failures, sent = 0, [], 0
                    for n in range(count):
                        labels = [("%s/%s" % (prefix, ("n%d-%d-" % (n, i) + "n" * 63)[:62] + "z"), "v" * 63) for i in range(64)]
                        code, message, size = create(s, n + 1, "u-%04d" % n, labels)
                        sent += size
                        if code == 0: created += 1
                        elif len(failures) < 5: failures.append("%d %s" % (code, message))
                    print(json.dumps({"created": created, "failures": failures, "bytes_sent": sent}))
                """#
        )
    }
}
