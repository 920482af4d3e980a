import RosterCore

/// Everything that shapes one simulated run. `SimConfig.random(seed:)` draws a different
/// cluster and fault mix per seed, so a sweep covers many shapes, not one shape many times.
public struct SimConfig: Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var nodeCount = 5
    /// Faults and client writes run for this long, then everything heals.
    public var faultPhaseMillis: Int64 = 30_000
    /// After healing, the cluster must converge within this long.
    public var convergenceDeadlineMillis: Int64 = 60_000
    /// One-way message delay, uniform: a wide range also reorders messages.
    public var delayMillis: ClosedRange<Int64> = 1...20
    public var lossRate = 0.05
    public var duplicateRate = 0.02
    /// Mean gap between fault episodes (crash, partition, one-way cut, isolation).
    public var meanFaultGapMillis: Int64 = 2_000
    /// The longest a single fault episode lasts. Kept well under `tombstoneGraceMillis`: a node
    /// cut off for longer than the grace period is reset by design and loses what it alone held.
    public var maxFaultMillis: Int64 = 5_000
    /// Mean gap between client operations, cluster-wide.
    public var meanClientGapMillis: Int64 = 40
    /// Distinct instance ids the clients use: few, so writes collide and deletes get re-registered.
    public var keyCount = 24
    /// Each node's wall clock is off by up to this much, plus a drift of up to `maxDriftPPM`.
    public var maxSkewMillis: Int64 = 400
    public var maxDriftPPM: Int64 = 200
    /// Group commit: an fsync takes this long, and a crash loses what it had not finished.
    public var fsyncMillis: ClosedRange<Int64> = 1...8
    public var tombstoneGraceMillis: Int64 = 20_000
    /// A node left down after healing, to check that everyone agrees it is gone.
    public var leaveOneDown = false
    /// The shell's timers, as in `ClusterConfiguration` and the agent's maintenance loop.
    public var membershipTickMillis: Int64 = 50
    public var antiEntropyMillis: Int64 = 1_000
    public var renewalBatchMillis: Int64 = 250
    public var collectionMillis: Int64 = 5_000
    /// Nodes each node joins through: nil means every other node (as the cluster configs do);
    /// the scale benchmark joins everyone through the first node, as a large deployment would.
    public var joinSeeds: Int?
    public var membership = MembershipSettings()
    public var replication = ReplicationSettings()

    public init(seed: UInt64) { self.seed = seed }

    /// A cluster shape and fault mix drawn from the seed.
    public static func random(seed: UInt64) -> SimConfig {
        var rng = SplitMix64(seed: seed ^ 0xC0FF_EE00_D15E_A5E5)
        var config = SimConfig(seed: seed)
        config.nodeCount = Int.random(in: 3...7, using: &rng)
        config.delayMillis = 1...Int64.random(in: 2...60, using: &rng)
        config.lossRate = [0, 0.02, 0.1, 0.25].randomElement(using: &rng)!
        config.duplicateRate = [0, 0.02, 0.1].randomElement(using: &rng)!
        config.meanFaultGapMillis = Int64.random(in: 800...4_000, using: &rng)
        config.keyCount = Int.random(in: 4...40, using: &rng)
        config.maxSkewMillis = [0, 50, 500, 2_000].randomElement(using: &rng)!
        config.fsyncMillis = 1...Int64.random(in: 1...30, using: &rng)
        config.leaveOneDown = Int.random(in: 0..<5, using: &rng) == 0 && config.nodeCount > 3
        return config
    }

    public var description: String {
        "seed=\(seed) nodes=\(nodeCount) delay=\(delayMillis.lowerBound)-\(delayMillis.upperBound)ms loss=\(lossRate) dup=\(duplicateRate) "
            + "faultGap=\(meanFaultGapMillis)ms keys=\(keyCount) skew=±\(maxSkewMillis)ms fsync≤\(fsyncMillis.upperBound)ms "
            + "leaveOneDown=\(leaveOneDown)"
    }
}
