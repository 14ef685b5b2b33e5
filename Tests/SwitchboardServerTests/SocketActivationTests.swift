@testable import SwitchboardServer
import SwitchboardProtocol
import Testing

/// The LISTEN_* rules of sd_listen_fds(3), from the variables alone (the
/// descriptor checks run end to end in EndToEndTests' systemd suite).
@Suite("Socket activation variables")
struct SocketActivationTests {
    static let pid: Int32 = 4242

    static func parse(_ environment: [String: String], name: String = "switchboard") throws(SwitchboardError) -> SocketActivation.Outcome {
        try SocketActivation.parse(environment: environment, pid: pid, wantedName: name)
    }

    @Test func absentMeansNotActivated() throws {
        #expect(try Self.parse([:]) == .notActivated)
    }

    @Test func anotherProcessIsNotForUs() throws {
        #expect(try Self.parse(["LISTEN_PID": "1", "LISTEN_FDS": "1"]) == .notActivated)
        #expect(try Self.parse(["LISTEN_PID": "1", "LISTEN_FDS": "garbage"]) == .notActivated)
    }

    @Test func singleDescriptor() throws {
        #expect(try Self.parse(["LISTEN_PID": "4242", "LISTEN_FDS": "1"]) == .adopt(descriptor: 3, passed: [3]))
    }

    @Test func pickedByName() throws {
        let environment = ["LISTEN_PID": "4242", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "other:switchboard:third"]
        #expect(try Self.parse(environment) == .adopt(descriptor: 4, passed: [3, 4, 5]))
        #expect(try Self.parse(environment, name: "third") == .adopt(descriptor: 5, passed: [3, 4, 5]))
    }

    @Test(arguments: [
        (["LISTEN_FDS": "1"], "LISTEN_PID is not"),
        (["LISTEN_PID": "x", "LISTEN_FDS": "1"], "LISTEN_PID=x is not a process id"),
        (["LISTEN_PID": "4242"], "LISTEN_FDS is not"),
        (["LISTEN_PID": "4242", "LISTEN_FDS": "one"], "LISTEN_FDS=one is not a number"),
        (["LISTEN_PID": "4242", "LISTEN_FDS": "-1"], "LISTEN_FDS=-1 is not a number"),
        (["LISTEN_PID": "4242", "LISTEN_FDS": "0"], "LISTEN_FDS=0"),
        (["LISTEN_PID": "4242", "LISTEN_FDS": "2"], "without LISTEN_FDNAMES"),
        (["LISTEN_PID": "4242", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "switchboard"], "names 1 descriptors but LISTEN_FDS=2"),
        (["LISTEN_PID": "4242", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "web"], "no passed socket is named \"switchboard\""),
    ])
    func inconsistentVariablesFailClearly(environment: [String: String], message: String) {
        #expect {
            _ = try Self.parse(environment)
        } throws: { error in
            guard let error = error as? SwitchboardError else { return false }
            return error.code == .failedPrecondition && error.message.hasPrefix("socket activation: ") && error.message.contains(message)
        }
    }

    @Test func watchdogIsHalfTheTimeoutForUs() throws {
        #expect(try SocketActivation.watchdogInterval(environment: ["WATCHDOG_USEC": "30000000"], pid: Self.pid) == .seconds(15))
        #expect(try SocketActivation.watchdogInterval(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"], pid: Self.pid) == .seconds(15))
        #expect(try SocketActivation.watchdogInterval(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"], pid: Self.pid) == nil)
        #expect(try SocketActivation.watchdogInterval(environment: [:], pid: Self.pid) == nil)
        #expect(throws: SwitchboardError.self) {
            try SocketActivation.watchdogInterval(environment: ["WATCHDOG_USEC": "soon"], pid: Self.pid)
        }
    }
}
