import Foundation
import FuzzSupport
import SwitchboardProtocol

// Writes the seed corpus of every fuzz target into <directory>/<target>/ (default
// ./corpus), replacing what is there. Deterministic: the same protocol version
// gives the same files, so a regeneration shows up in `git diff` only when the
// encoding changed. Run by `scripts/fuzz.sh --regenerate-corpus`.

let directory = URL(fileURLWithPath: CommandLine.arguments.dropFirst().first ?? "corpus", isDirectory: true)
let families: [(target: String, family: MessageFamily)] = [
    ("FuzzFrame", .frame), ("FuzzSessions", .sessions), ("FuzzPrompts", .prompts),
    ("FuzzStatus", .status), ("FuzzWorkers", .workers),
]
let frames = Samples.frames.map { $0.serializedBytes() }
let seedsPerMember = 12

func write(_ seeds: [(name: String, bytes: [UInt8])], target: String) throws {
    let folder = directory.appendingPathComponent(target, isDirectory: true)
    try? FileManager.default.removeItem(at: folder)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    var seen = Set<[UInt8]>()
    for seed in seeds where seen.insert(seed.bytes).inserted {
        try Data(seed.bytes).write(to: folder.appendingPathComponent(seed.name))
    }
    print("\(target): \(seen.count) seeds")
}

for (target, family) in families {
    var seeds: [(name: String, bytes: [UInt8])] = []
    for member in family.members {
        let inputs = family.selectors(of: member.name).flatMap { selector in
            frames.compactMap { family.seedInput(selector: selector, frameBytes: $0) }
        }
        precondition(!inputs.isEmpty, "no sample covers \(target)/\(member.name)")
        // At most `seedsPerMember`, spread over the samples: seeds stay small.
        let step = max(1, (inputs.count + seedsPerMember - 1) / seedsPerMember)
        for (number, index) in stride(from: 0, to: inputs.count, by: step).enumerated() {
            seeds.append((String(format: "%@-%02d", member.name, number + 1), inputs[index]))
        }
    }
    try write(seeds, target: target)
}

// The stream target: control byte (see FuzzFrameDecoder) + length-prefixed frames.
var stream: [(name: String, bytes: [UInt8])] = []
let prefixed = Samples.frames.map { $0.prefixedBytes() }
let defaultMaximum: UInt8 = 1, smallMaximum: UInt8 = 0
for (index, control) in [UInt8(0x01), 0x25, 0x49, 0x6D, 0x91, 0xB5, 0xD9, 0xFD].enumerated() {
    // A handful of frames in one stream, read in pieces of different sizes.
    let frames = (0..<4).flatMap { prefixed[(index * 4 + $0 * 7) % prefixed.count] }
    stream.append((String(format: "frames-%02d", index), [control] + frames))
}
stream.append(("oversized-prefix", [defaultMaximum, 0xFF, 0xFF, 0xFF, 0xFF, 0x08, 0x01]))
stream.append(("over-small-maximum", [smallMaximum] + prefixed[1]))
stream.append(("truncated-body", [defaultMaximum] + prefixed[0].dropLast(3)))
stream.append(("malformed-body", [defaultMaximum, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF]))
stream.append(("empty-frame", [defaultMaximum, 0, 0, 0, 0]))
stream.append(("split-prefix", [0x01 | 0x00] + prefixed[8] + prefixed[9]))
try write(stream, target: "FuzzFrameDecoder")
