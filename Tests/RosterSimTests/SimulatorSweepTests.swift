import RosterCore
import Testing

@testable import RosterSim

/// The bounded sweep that `make test` runs, and the properties that make a seed worth replaying.
@Suite("Deterministic cluster simulation")
struct SimulatorSweepTests {
    /// Seeds every `swift test` runs: each one a different cluster shape and fault mix, with
    /// crashes, symmetric and one-way partitions, loss, duplication, reordering and skew.
    static let sweepSeeds: Range<UInt64> = 1..<201

    @Test("every seed of the bounded sweep converges and loses no acknowledged write")
    func boundedSweepHoldsEveryInvariant() async {
        let (summary, failedReports) = await onSimulationQueue {
            var failedReports: [String] = []
            let summary = SweepSummary.run(seeds: Self.sweepSeeds) { result in
                if !result.passed { failedReports.append(result.report) }
            }
            return (summary, failedReports)
        }
        #expect(summary.failedSeeds.isEmpty, "\(failedReports.joined(separator: "\n"))")
        #expect(summary.lostWrites == 0)
        #expect(summary.resurrections == 0)
        // The sweep must have tested something: thousands of acknowledged writes.
        #expect(summary.ackedWrites > 1_000 * Self.sweepSeeds.count / 2)
    }

    @Test("a seed replays to the same run, event for event")
    func aSeedReplaysIdentically() async {
        let (first, second, other) = await onSimulationQueue {
            (Simulation.run(seed: 42), Simulation.run(seed: 42), Simulation.run(seed: 43))
        }
        #expect(first.trace.map(\.description) == second.trace.map(\.description))
        #expect(first.ackedWrites == second.ackedWrites)
        #expect(first.convergenceMillis == second.convergenceMillis)
        #expect(other.trace.map(\.description) != first.trace.map(\.description))
    }
}
