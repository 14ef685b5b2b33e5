// swift-tools-version: 6.1
// The Swift runner of the conformance suite: a separate package so the main
// Package.swift stays untouched. It uses the main package's client library by path.
import PackageDescription

let package = Package(
    name: "switchboard-conformance",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "switchboard", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "switchboard-conformance",
            dependencies: [
                .product(name: "SwitchboardClient", package: "switchboard"),
                .product(name: "SwitchboardProtocol", package: "switchboard"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
