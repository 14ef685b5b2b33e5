// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "switchboard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "switchboard", targets: ["switchboard"]),
        .library(name: "SwitchboardProtocol", targets: ["SwitchboardProtocol"]),
        .library(name: "SwitchboardCore", targets: ["SwitchboardCore"]),
        .library(name: "SwitchboardServer", targets: ["SwitchboardServer"]),
        .library(name: "SwitchboardClient", targets: ["SwitchboardClient"]),
        .library(name: "SwitchboardPersistence", targets: ["SwitchboardPersistence"]),
        // The length-prefixed NIO codec; a product so the fuzz package (Fuzz/) can drive it.
        .library(name: "SwitchboardTransport", targets: ["SwitchboardTransport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // `serve --config`: JSON (default trait) and YAML file snapshots; Yams is
        // what the YAML trait already builds, named here to list the file's keys.
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: ["JSON", "YAML"]),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CProtobufC",
            pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]
        ),
        .target(name: "CSwitchboardProto", dependencies: ["CProtobufC"]),
        .target(
            name: "SwitchboardProtocol",
            dependencies: ["CSwitchboardProto", "CProtobufC"],
            swiftSettings: strict
        ),
        .target(
            name: "SwitchboardCore",
            dependencies: [
                "SwitchboardProtocol",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The ACP agent backend's process, codec and connection (no NIO).
        .target(
            name: "SwitchboardAgentHost",
            dependencies: ["SwitchboardCore", "SwitchboardProtocol"],
            swiftSettings: strict
        ),
        // Runs one agent and kills its process group when the server or the agent dies.
        .executableTarget(name: "switchboard-agent-keeper"),
        .target(
            name: "SwitchboardPersistence",
            dependencies: [
                "SwitchboardCore",
                "SwitchboardProtocol",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SwitchboardTransport",
            dependencies: [
                "SwitchboardProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SwitchboardServer",
            dependencies: [
                "SwitchboardProtocol",
                "SwitchboardCore",
                "SwitchboardTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SwitchboardClient",
            dependencies: [
                "SwitchboardProtocol",
                "SwitchboardTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "switchboard",
            dependencies: [
                "SwitchboardServer",
                "SwitchboardClient",
                "SwitchboardCore",
                "SwitchboardPersistence",
                "SwitchboardProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "SwitchboardProtocolTests", dependencies: ["SwitchboardProtocol"], swiftSettings: strict),
        .testTarget(
            name: "SwitchboardTransportTests",
            dependencies: [
                "SwitchboardTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "SwitchboardCoreTests", dependencies: ["SwitchboardCore"], swiftSettings: strict),
        .testTarget(
            name: "SwitchboardPersistenceTests",
            dependencies: [
                "SwitchboardPersistence",
                "SwitchboardCore",
                "SwitchboardProtocol",
                "switchboard-store-crash-helper",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Records into a store and dies without closing it (the crash test's child).
        .executableTarget(
            name: "switchboard-store-crash-helper",
            dependencies: [
                "SwitchboardPersistence",
                "SwitchboardCore",
                "SwitchboardProtocol",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/SwitchboardPersistenceCrashHelper",
            swiftSettings: strict
        ),
        .testTarget(
            name: "SwitchboardServerTests",
            dependencies: [
                "SwitchboardServer",
                "SwitchboardClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "SwitchboardClientTests", dependencies: ["SwitchboardClient", "SwitchboardServer"], swiftSettings: strict),
        .testTarget(
            name: "SwitchboardAgentHostTests",
            dependencies: ["SwitchboardAgentHost", "switchboard-agent-keeper", "switchboard-agent-host-helper"],
            swiftSettings: strict
        ),
        // Owns an agent until it is SIGKILLed (the server-death test's child).
        .executableTarget(
            name: "switchboard-agent-host-helper",
            dependencies: ["SwitchboardAgentHost"],
            path: "Tests/SwitchboardAgentHostHelper",
            swiftSettings: strict
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["switchboard", "SwitchboardClient", "SwitchboardProtocol"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
