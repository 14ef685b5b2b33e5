import SwitchboardProtocol
import Testing

@Suite("StatusCode and enum numbers")
struct StatusCodeTests {
    /// gRPC's canonical status codes (grpc/doc/statuscodes.md), written out literally.
    static let canonical: [(name: String, number: UInt32)] = [
        ("OK", 0),
        ("CANCELLED", 1),
        ("UNKNOWN", 2),
        ("INVALID_ARGUMENT", 3),
        ("DEADLINE_EXCEEDED", 4),
        ("NOT_FOUND", 5),
        ("ALREADY_EXISTS", 6),
        ("PERMISSION_DENIED", 7),
        ("RESOURCE_EXHAUSTED", 8),
        ("FAILED_PRECONDITION", 9),
        ("ABORTED", 10),
        ("OUT_OF_RANGE", 11),
        ("UNIMPLEMENTED", 12),
        ("INTERNAL", 13),
        ("UNAVAILABLE", 14),
        ("DATA_LOSS", 15),
        ("UNAUTHENTICATED", 16),
    ]

    @Test("names and numbers equal gRPC's canonical table")
    func namesAndNumbers() {
        for (name, number) in Self.canonical {
            #expect(StatusCode(rawValue: number).name == name)
            #expect(StatusCode(rawValue: number).description == name)
        }
        #expect(StatusCode.allCanonical.map(\.name) == Self.canonical.map(\.name))
        #expect(StatusCode.allCanonical.map(\.rawValue) == Self.canonical.map(\.number))
    }

    @Test("the static constants carry the canonical numbers")
    func constants() {
        let constants: [StatusCode] = [
            .ok, .cancelled, .unknown, .invalidArgument, .deadlineExceeded, .notFound, .alreadyExists,
            .permissionDenied, .resourceExhausted, .failedPrecondition, .aborted, .outOfRange,
            .unimplemented, .internal, .unavailable, .dataLoss, .unauthenticated,
        ]
        #expect(constants.map(\.rawValue) == Self.canonical.map(\.number))
    }

    @Test("init(name:) parses canonical names in any case, and numbers")
    func initName() {
        for (name, number) in Self.canonical {
            #expect(StatusCode(name: name) == StatusCode(rawValue: number))
            #expect(StatusCode(name: name.lowercased()) == StatusCode(rawValue: number))
            #expect(StatusCode(name: String(number)) == StatusCode(rawValue: number))
        }
        #expect(StatusCode(name: "Deadline_Exceeded") == .deadlineExceeded)
        #expect(StatusCode(name: "42") == StatusCode(rawValue: 42))
        #expect(StatusCode(name: "NOT FOUND") == nil)
        #expect(StatusCode(name: "") == nil)
        #expect(StatusCode(name: "-1") == nil)
        #expect(StatusCode(name: "bogus") == nil)
    }

    @Test("an unknown code keeps its number and gets a CODE_n name")
    func unknownCode() {
        #expect(StatusCode(rawValue: 17).name == "CODE_17")
        #expect(StatusCode(rawValue: 4242).rawValue == 4242)
        #expect(!StatusCode.allCanonical.contains(StatusCode(rawValue: 17)))
    }

    @Test("Swift enums use the proto enum numbers")
    func enumNumbers() {
        #expect([SessionState.unspecified, .idle, .busy, .closed].map(\.rawValue) == [0, 1, 2, 3])
        #expect([BusyPolicy.wait, .reject].map(\.rawValue) == [0, 1])
        #expect([TurnState.unspecified, .queued, .running, .finished].map(\.rawValue) == [0, 1, 2, 3])
        #expect([ServingStatus.unknown, .serving, .notServing].map(\.rawValue) == [0, 1, 2])
    }

    @Test("SwitchboardError equality ignores the cause and prints code and message")
    func errorDescription() {
        struct Cause: Error {}
        let error = SwitchboardError(code: .notFound, message: "no session x", cause: Cause())
        #expect(error == SwitchboardError(code: .notFound, message: "no session x"))
        #expect(error != SwitchboardError(code: .notFound, message: "no session y"))
        #expect(SwitchboardError(code: .notFound, message: "no session x").description == "NOT_FOUND: no session x")
    }
}
