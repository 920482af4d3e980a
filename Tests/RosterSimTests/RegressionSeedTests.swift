import Testing

@testable import RosterSim

/// Every seed that ever found a bug, replayed on every test run. The seeds' runs changed once
/// the bugs were fixed (the fixes change what nodes send), so each bug also has a direct test:
/// `MembershipPingBackTests` and `TombstoneGraceTests`.
@Suite("Seeds that found bugs")
struct RegressionSeedTests {
    @Test(
        "seeds that found bugs now hold every invariant",
        arguments: [
            // 95, 115: an acknowledged write "gone" after a concurrent deletion beat it and was
            // collected: a checker bug (collected tombstones now count as covering the write).
            95, 115,
            // 100: a restarted node never learned of a node that pinged it (MembershipInstance+Receive).
            100,
            // 125: a newer tombstone kept its predecessor's grace clock, was collected early, and
            // its fresh horizon reset a node away 8 s, dropping acknowledged writes (Registry+Tombstones).
            125,
            // 1008: a write lost before its fsync had been rumored; after the restart its vector
            // clock counter was issued again, and a peer's write on top of the lost one dominated
            // an acknowledged deregistration (fixed by `VectorClock.counterFloor`, in `SimNode` and `Registry` alike).
            1008,
        ] as [UInt64])
    func regressionSeed(seed: UInt64) async {
        let result = await onSimulationQueue { Simulation.run(seed: seed) }
        #expect(result.passed, "\(result.report)")
        #expect(result.lostWrites == 0)
    }
}
