#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import RosterSim

/// roster-sim: the deterministic cluster simulator.
///   roster-sim --seed N [--verbose]        replay one seed and print its trace
///   roster-sim --seeds COUNT [--start S]   sweep seeds S..<S+COUNT; print failures and a summary
///   roster-sim --scale [--out FILE]        the scale table (markdown)
let arguments = Array(CommandLine.arguments.dropFirst())

func value(_ flag: String) -> String? {
    guard let i = arguments.firstIndex(of: flag), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}

func fail(_ message: String) -> Never {
    print("roster-sim: \(message)")
    print("usage: roster-sim --seed N [--verbose] | --seeds COUNT [--start S] | --scale [--out FILE]")
    exit(2)
}

if let text = value("--seed") {
    guard let seed = UInt64(text) else { fail("--seed wants a non-negative integer, got '\(text)'") }
    let result = Simulation.run(seed: seed, verbose: arguments.contains("--verbose"))
    print(result.report)
    if result.passed {
        print("  last events:")
        for line in result.trace { print("    \(line)") }
    }
    print(result.summaryLine)
    exit(result.passed ? 0 : 1)
} else if let text = value("--seeds") {
    guard let count = UInt64(text) else { fail("--seeds wants a count, got '\(text)'") }
    guard let start = UInt64(value("--start") ?? "1") else { fail("--start wants a non-negative integer") }
    let summary = SweepSummary.run(seeds: start..<(start + count)) { result in
        if !result.passed { print(result.report) }
    } progress: { done in
        if done % 500 == 0 { print("… \(done) seeds") }
    }
    print(summary.markdown)
    exit(summary.failedSeeds.isEmpty ? 0 : 1)
} else if arguments.contains("--scale") {
    let sizes = value("--sizes").map { $0.split(separator: ",").compactMap { Int($0) } } ?? [5, 50, 200, 1000]
    let table = ScaleBenchmark.markdown(sizes: sizes) { row in print("… \(row.nodes) nodes measured") }
    if let out = value("--out") {
        guard let file = fopen(out, "w") else { fail("cannot write \(out)") }
        fputs(table, file)
        fclose(file)
        print("roster-sim: wrote \(out)")
    }
    print(table)
} else {
    fail("say what to run")
}
