import RosterCore
import Testing

@testable import RosterSim

/// Regression for seed 125: the grace period of a tombstone runs from when this node first
/// held that version, so a newer tombstone replacing an older one is not collected early.
@Suite("Tombstone grace")
struct TombstoneGraceTests {
    func tombstone(_ clock: [NodeID: UInt64], stamp: Int64) -> Record {
        Record(
            key: "k", serviceName: "svc", instance: nil, clock: VectorClock(clock),
            stamp: HLCTimestamp(physicalMillis: stamp, logical: 0), origin: "n1")
    }

    @Test("a newer tombstone restarts the grace period, and the horizon stays old until it ends")
    func newerTombstoneRestartsGrace() {
        var config = SimConfig(seed: 1)
        config.nodeCount = 1
        let sim = Simulation(config: config)
        sim.start(0)
        guard var node = sim.nodes[0] else { Issue.record("no node"); return }
        let grace: Int64 = 20_000
        _ = node.applyRemote([tombstone(["n1": 1], stamp: 1_000)], now: 0)
        // A concurrent deletion with a later stamp wins and replaces the first tombstone.
        _ = node.applyRemote([tombstone(["n2": 1], stamp: 15_000)], now: 15_000)
        let early = node.collectTombstones(graceMillis: grace, disk: &sim.disks[0], now: 21_000)
        #expect(early.isEmpty, "the replacing tombstone has been held 6 s, not 20 s")
        #expect(node.state.collectionHorizon == .zero)
        let due = node.collectTombstones(graceMillis: grace, disk: &sim.disks[0], now: 36_000)
        #expect(due.count == 1)
        #expect(node.state.collectionHorizon.physicalMillis == 15_000)
    }
}
