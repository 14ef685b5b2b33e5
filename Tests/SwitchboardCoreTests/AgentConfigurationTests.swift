import SwitchboardCore
import Testing

/// The rules of the `agents` section (issue 13, item 1): each broken rule is
/// refused with the file's key, and a good configuration keeps its defaults.
@Suite("Agent configuration")
struct AgentConfigurationTests {
    static func agent(_ change: (inout AgentConfiguration) -> Void = { _ in }) -> AgentConfiguration {
        var agent = AgentConfiguration(name: "coder", command: ["gemini", "--acp"], cwd: "/srv/work")
        change(&agent)
        return agent
    }

    /// The violation `configuration` throws, or nil when it is valid.
    static func violation(_ configuration: AgentsConfiguration) -> AgentConfiguration.Violation? {
        do throws(AgentConfiguration.Violation) {
            try configuration.validate()
            return nil
        } catch {
            return error
        }
    }

    static func violation(_ agent: AgentConfiguration) -> AgentConfiguration.Violation? {
        violation(AgentsConfiguration(agents: [agent.name: agent]))
    }

    @Test("defaults are valid and documented values")
    func defaults() {
        let agent = Self.agent()
        #expect(Self.violation(agent) == nil)
        #expect(agent.permission == .deny)
        #expect(agent.handshakeTimeout == .seconds(30))
        #expect(agent.idleTimeout == .seconds(600))
        #expect(agent.cancelGrace == .seconds(5))
        #expect(agent.maxLineBytes == 8 << 20)
        #expect(agent.environmentAllow == ["HOME", "LANG", "LC_ALL", "LOGNAME", "PATH", "TERM", "USER"])
        #expect(agent.environmentSet.isEmpty)
        #expect(AgentsConfiguration().maxLiveAgents == 16)
        #expect(Self.violation(AgentsConfiguration()) == nil)
    }

    @Test("a full configuration is valid")
    func fullConfiguration() {
        let agent = Self.agent {
            $0.environmentAllow = ["PATH", "_PRIVATE", "lower_case1"]
            $0.environmentSet = ["GEMINI_MODEL": "pro", "EMPTY": ""]
            $0.permission = .allow
            $0.handshakeTimeout = .milliseconds(1)
            $0.maxLineBytes = AgentConfiguration.maxLineBytesRange.lowerBound
        }
        #expect(Self.violation(agent) == nil)
        var many = AgentsConfiguration(maxLiveAgents: 1)
        for name in ["a", "B.2", "x_y-z", String(repeating: "n", count: 128)] {
            many.agents[name] = AgentConfiguration(name: name, command: ["true"], cwd: "/")
        }
        #expect(Self.violation(many) == nil)
    }

    @Test(
        "each broken rule names its key",
        arguments: [
            (AgentConfigurationTests.agent { $0.command = [] }, "agents.coder.command", "must not be empty"),
            (AgentConfigurationTests.agent { $0.command = ["", "--acp"] }, "agents.coder.command", "the program (first element) must not be empty"),
            (AgentConfigurationTests.agent { $0.command = ["gemini", "a\u{0}b"] }, "agents.coder.command", "NUL"),
            (AgentConfigurationTests.agent { $0.cwd = "relative" }, "agents.coder.cwd", "absolute path"),
            (AgentConfigurationTests.agent { $0.cwd = "" }, "agents.coder.cwd", "absolute path"),
            (AgentConfigurationTests.agent { $0.environmentAllow = ["PATH", "1ABC"] }, "agents.coder.environment.allow", "invalid variable name \"1ABC\""),
            (AgentConfigurationTests.agent { $0.environmentAllow = ["A=B"] }, "agents.coder.environment.allow", "invalid variable name"),
            (AgentConfigurationTests.agent { $0.environmentAllow = [""] }, "agents.coder.environment.allow", "invalid variable name"),
            (AgentConfigurationTests.agent { $0.environmentSet = ["BAD-NAME": "x"] }, "agents.coder.environment.set", "invalid variable name"),
            (AgentConfigurationTests.agent { $0.environmentSet = ["OK": "a\u{0}"] }, "agents.coder.environment.set.OK", "NUL"),
            (AgentConfigurationTests.agent { $0.handshakeTimeout = .zero }, "agents.coder.handshake-timeout", "must be positive"),
            (AgentConfigurationTests.agent { $0.idleTimeout = .seconds(-1) }, "agents.coder.idle-timeout", "must be positive"),
            (AgentConfigurationTests.agent { $0.cancelGrace = .zero }, "agents.coder.cancel-grace", "must be positive"),
            (AgentConfigurationTests.agent { $0.maxLineBytes = 1023 }, "agents.coder.max-line-bytes", "must be between 1024"),
            (AgentConfigurationTests.agent { $0.maxLineBytes = (1 << 30) + 1 }, "agents.coder.max-line-bytes", "must be between 1024"),
        ] as [(AgentConfiguration, String, String)]
    )
    func brokenRule(agent: AgentConfiguration, field: String, message: String) throws {
        let violation = try #require(Self.violation(agent))
        #expect(violation.field == field)
        #expect(violation.message.contains(message), "\(violation)")
    }

    @Test("agent names follow the task-queue name rule", arguments: ["", "a b", "a/b", "agent:x", String(repeating: "n", count: 129), "é"])
    func badName(name: String) throws {
        let agent = AgentConfiguration(name: name, command: ["x"], cwd: "/")
        let violation = try #require(Self.violation(agent))
        #expect(violation.field == "agents.\(name)")
        #expect(violation.message.contains("must match [A-Za-z0-9._-]{1,128}"))
    }

    @Test("the server-wide cap must be positive, and an agent keyed by another name is refused")
    func serverWide() throws {
        let cap = try #require(Self.violation(AgentsConfiguration(maxLiveAgents: 0)))
        #expect(cap.field == "max-live-agents")
        let misnamed = try #require(Self.violation(AgentsConfiguration(agents: ["other": Self.agent()])))
        #expect(misnamed.field == "agents.other")
    }

    @Test("the permission policy is allow or deny")
    func permissionPolicy() {
        #expect(AgentConfiguration.PermissionPolicy.allCases.map(\.rawValue) == ["allow", "deny"])
        #expect(AgentConfiguration.PermissionPolicy(rawValue: "ask") == nil)
    }
}
