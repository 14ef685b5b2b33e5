// swift-tools-version: 6.1
//
// Switchboard's libFuzzer targets: a separate package so that `swift build` and
// `swift test` of the main package never see them (they only link with
// `-sanitize=fuzzer`, which supplies `main`). `scripts/fuzz.sh` builds and runs
// them; docs/SECURITY.md ("Fuzzing") says what each one checks.
//
// Products:
//   FuzzFrameDecoder  byte stream, split at fuzzer-chosen points, through FrameReader
//                     and the NIO FrameDecoder (EmbeddedChannel); both must agree
//   FuzzFrame         Frame and each message of its `kind` oneof
//   FuzzSessions      the session payloads (create/get/list/close, Session, ListTurns)
//   FuzzPrompts       PromptRequest, PromptEvent (every event), AttachRequest
//   FuzzStatus        server/session status and health payloads
//   FuzzWorkers       WorkerMessage and WorkerCommand
//   FuzzCorpus        writes the seed corpus (corpus/<target>/) with the protocol's
//                     own encoder; a normal executable, built without sanitizers
//
// Every message target decodes through the public `Frame(serializedBytes:)`, the
// same libprotobuf-c unpack and conversion code the server and clients run.
import PackageDescription

let fuzzer: [SwiftSetting] = [
    // The file holds only `LLVMFuzzerTestOneInput`; libFuzzer brings `main`.
    .unsafeFlags(["-parse-as-library"]),
]

func fuzzTarget(_ name: String, _ dependencies: [Target.Dependency] = []) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport", .product(name: "SwitchboardProtocol", package: "switchboard")] + dependencies,
        swiftSettings: fuzzer
    )
}

let package = Package(
    name: "switchboard-fuzz",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "FuzzFrameDecoder", targets: ["FuzzFrameDecoder"]),
        .executable(name: "FuzzFrame", targets: ["FuzzFrame"]),
        .executable(name: "FuzzSessions", targets: ["FuzzSessions"]),
        .executable(name: "FuzzPrompts", targets: ["FuzzPrompts"]),
        .executable(name: "FuzzStatus", targets: ["FuzzStatus"]),
        .executable(name: "FuzzWorkers", targets: ["FuzzWorkers"]),
        .executable(name: "FuzzCorpus", targets: ["FuzzCorpus"]),
    ],
    dependencies: [
        .package(name: "switchboard", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    ],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [.product(name: "SwitchboardProtocol", package: "switchboard")]
        ),
        fuzzTarget("FuzzFrameDecoder", [
            .product(name: "SwitchboardTransport", package: "switchboard"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        fuzzTarget("FuzzFrame"),
        fuzzTarget("FuzzSessions"),
        fuzzTarget("FuzzPrompts"),
        fuzzTarget("FuzzStatus"),
        fuzzTarget("FuzzWorkers"),
        .executableTarget(
            name: "FuzzCorpus",
            dependencies: ["FuzzSupport", .product(name: "SwitchboardProtocol", package: "switchboard")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
