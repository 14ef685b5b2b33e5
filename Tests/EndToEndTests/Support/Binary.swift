import Foundation

/// Where the `switchboard` executable under test lives.
///
/// The test bundle runs from the build products directory (`.build/debug/` or
/// `.build/release/`), next to the `switchboard` executable it depends on.
/// `SWITCHBOARD_BINARY` overrides the search.
enum SwitchboardBinary {
    /// The executable's path; throws a clear error when it is missing.
    static func path() throws -> String { try located.get() }

    private static let located: Result<String, E2EError> = locate()

    private static func locate() -> Result<String, E2EError> {
        let fileManager = FileManager.default
        if let override = ProcessInfo.processInfo.environment["SWITCHBOARD_BINARY"], !override.isEmpty {
            return .success(override)
        }
        var directories: [URL] = []
        if let exe = try? fileManager.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            directories.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        directories.append(Bundle.main.bundleURL)
        directories.append(Bundle.main.bundleURL.deletingLastPathComponent())
        if let first = CommandLine.arguments.first {
            directories.append(URL(fileURLWithPath: first).deletingLastPathComponent())
        }
        for directory in directories {
            // Also look above a `.xctest` bundle directory (macOS layout).
            for candidate in [directory, directory.deletingLastPathComponent()] {
                let path = candidate.appendingPathComponent("switchboard").path
                var isDirectory: ObjCBool = false
                if fileManager.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                    fileManager.isExecutableFile(atPath: path)
                {
                    return .success(path)
                }
            }
        }
        let searched = directories.map(\.path).joined(separator: ", ")
        return .failure(E2EError(
            "EndToEndTests: the `switchboard` executable was not found next to the test bundle (searched \(searched)). "
                + "Build it with `swift build --build-tests` or set SWITCHBOARD_BINARY."
        ))
    }
}
