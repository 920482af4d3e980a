/// The figures of a sweep over many seeds.
public struct SweepSummary: Sendable {
    public var seeds = 0
    public var failedSeeds: [UInt64] = []
    public var ackedWrites = 0
    public var lostWrites = 0
    public var resurrections = 0
    public var operations = 0
    /// Convergence after the heal, in virtual milliseconds, over the seeds that converged.
    public var convergence: [Int64] = []

    /// Runs `seeds`, calling `each` with every result (to print failures as they come).
    public static func run(
        seeds: Range<UInt64>, each: (SimResult) -> Void = { _ in }, progress: (Int) -> Void = { _ in }
    ) -> SweepSummary {
        var summary = SweepSummary()
        for seed in seeds {
            let result = Simulation.run(seed: seed)
            summary.add(result)
            each(result)
            progress(summary.seeds)
        }
        return summary
    }

    public mutating func add(_ result: SimResult) {
        seeds += 1
        if !result.passed { failedSeeds.append(result.config.seed) }
        ackedWrites += result.ackedWrites
        lostWrites += result.lostWrites
        resurrections += result.resurrections
        operations += result.operations
        if let millis = result.convergenceMillis { convergence.append(millis) }
    }

    func percentile(_ p: Double) -> Int64 {
        guard !convergence.isEmpty else { return 0 }
        let sorted = convergence.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
    }

    public var markdown: String {
        let rounds = { (millis: Int64) in String(Double(millis) / 1000) }
        return """
            | seeds | failed | client ops | acknowledged writes | lost | resurrected | converge after heal p50 / p99 / max |
            |---:|---:|---:|---:|---:|---:|---|
            | \(seeds) | \(failedSeeds.count) | \(operations) | \(ackedWrites) | \(lostWrites) | \(resurrections) | \(rounds(percentile(0.5))) / \(rounds(percentile(0.99))) / \(rounds(convergence.max() ?? 0)) s |
            \(failedSeeds.isEmpty ? "" : "\nfailed seeds: " + failedSeeds.map(String.init).joined(separator: " ") + "\n")
            """
    }
}
