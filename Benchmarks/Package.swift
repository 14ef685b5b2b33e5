// swift-tools-version: 6.1
//
// Switchboard's benchmarks: a separate package so the main package and its test
// command never build gRPC or the benchmark framework. `run.sh` drives everything.
//
// Products:
//   switchboard-bench  load generator on the Swift client library (no heavy deps)
//   grpc-peer          the same two methods on grpc-swift-2 (HTTP/2 over a Unix socket)
//   SwitchboardMicro   ordo-one/benchmark micro-benchmarks (`swift package benchmark`)
//
// SWITCHBOARD_BENCH_QUICK=1 (set by `run.sh --quick`, in its own scratch path) declares
// only switchboard-bench, so the quick mode resolves and builds neither grpc-swift-2
// nor ordo-one/benchmark.
import PackageDescription
import class Foundation.ProcessInfo

let quick = ProcessInfo.processInfo.environment["SWITCHBOARD_BENCH_QUICK"] != nil

var dependencies: [Package.Dependency] = [
    .package(name: "switchboard", path: ".."),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
]
var products: [Product] = [
    .executable(name: "switchboard-bench", targets: ["switchboard-bench"]),
    .executable(name: "store-bench", targets: ["store-bench"]),
]
var targets: [Target] = [
    .target(name: "BenchCommon"),
    .executableTarget(
        name: "switchboard-bench",
        dependencies: [
            "BenchCommon",
            .product(name: "SwitchboardClient", package: "switchboard"),
            .product(name: "SwitchboardProtocol", package: "switchboard"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]
    ),
    // The session store: reload of 10,000 sessions and output throughput (issue #8).
    .executableTarget(
        name: "store-bench",
        dependencies: [
            .product(name: "SwitchboardPersistence", package: "switchboard"),
            .product(name: "SwitchboardCore", package: "switchboard"),
            .product(name: "SwitchboardProtocol", package: "switchboard"),
            .product(name: "Logging", package: "swift-log"),
        ]
    ),
]

if !quick {
    dependencies += [
        .package(url: "https://github.com/grpc/grpc-swift-2.git", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", exact: "2.9.2"),
        .package(url: "https://github.com/ordo-one/benchmark.git", exact: "1.38.1", traits: ["MallocInterposer"]),
    ]
    products += [
        .executable(name: "grpc-peer", targets: ["grpc-peer"]),
    ]
    targets += [
        .executableTarget(
            name: "grpc-peer",
            dependencies: [
                "BenchCommon",
                .product(name: "SwitchboardProtocol", package: "switchboard"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "SwitchboardMicro",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SwitchboardProtocol", package: "switchboard"),
            ],
            path: "Benchmarks/SwitchboardMicro",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
}

let package = Package(
    name: "switchboard-benchmarks",
    platforms: [.macOS(.v15)],
    products: products,
    dependencies: dependencies,
    targets: targets,
    swiftLanguageModes: [.v6]
)
