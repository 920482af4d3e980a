import Testing
@testable import RosterCore

@Suite struct VectorClockTests {
    @Test func incrementMakesTheClockCausallyLater() {
        let a = VectorClock()
        let b = a.incremented(at: "n1")
        #expect(a.compare(to: b) == .before)
        #expect(b.compare(to: a) == .after)
        #expect(b["n1"] == 1)
        #expect(b["n2"] == 0)
    }

    @Test func independentIncrementsAreConcurrent() {
        let base = VectorClock(["n1": 1])
        let left = base.incremented(at: "n1")
        let right = base.incremented(at: "n2")
        #expect(left.compare(to: right) == .concurrent)
        #expect(right.compare(to: left) == .concurrent)
    }

    @Test func mergeIsThePointwiseMaximumAndDominatesBoth() {
        let left = VectorClock(["n1": 3, "n2": 1])
        let right = VectorClock(["n2": 4, "n3": 2])
        let merged = left.merged(with: right)
        #expect(merged == VectorClock(["n1": 3, "n2": 4, "n3": 2]))
        #expect(left.compare(to: merged) == .before)
        #expect(right.compare(to: merged) == .before)
        #expect(merged.compare(to: merged) == .equal)
    }

    @Test func zeroEntriesDoNotAffectEquality() {
        #expect(VectorClock(["n1": 0]) == VectorClock())
        #expect(VectorClock(["n1": 0]).compare(to: VectorClock()) == .equal)
    }

    @Test func mergeLawsHoldForRandomClocks() {
        let seed = UInt64.random(in: 0...UInt64.max)
        var rng = SeededRandom(seed: seed)
        func randomClock() -> VectorClock {
            VectorClock(Dictionary(uniqueKeysWithValues: ["a", "b", "c"].map { ($0, UInt64.random(in: 0...3, using: &rng)) }))
        }
        for _ in 0..<500 {
            let (x, y, z) = (randomClock(), randomClock(), randomClock())
            #expect(x.merged(with: y) == y.merged(with: x), "seed \(seed)")
            #expect(x.merged(with: y).merged(with: z) == x.merged(with: y.merged(with: z)), "seed \(seed)")
            #expect(x.merged(with: x) == x, "seed \(seed)")
        }
    }
}

@Suite struct HybridLogicalClockTests {
    @Test func stampsIncreaseEvenWhenWallTimeStandsStillOrGoesBack() {
        var clock = HybridLogicalClock()
        let a = clock.tick(physicalMillis: 100)
        let b = clock.tick(physicalMillis: 100)
        let c = clock.tick(physicalMillis: 90)
        #expect(a < b)
        #expect(b < c)
        #expect(clock.tick(physicalMillis: 200) == HLCTimestamp(physicalMillis: 200, logical: 0))
    }

    @Test func observingARemoteStampMakesLaterLocalStampsLarger() {
        var clock = HybridLogicalClock()
        _ = clock.tick(physicalMillis: 100)
        let remote = HLCTimestamp(physicalMillis: 5_000, logical: 7)
        clock.observe(remote)
        #expect(clock.tick(physicalMillis: 101) > remote)
    }
}

@Suite struct CounterFloorTests {
    @Test func aLaterLifeOfANodeIssuesCountersAboveAnythingAnEarlierLifeCouldHave() {
        let earlier = VectorClock().incremented(at: "n1", atLeast: VectorClock.counterFloor(generation: 1_700_000_000_000))
        var lost = earlier
        for _ in 0..<1_000 { lost = lost.incremented(at: "n1") }
        // After a crash that lost `lost`, the next life starts again from `earlier`.
        let afterRestart = earlier.incremented(at: "n1", atLeast: VectorClock.counterFloor(generation: 1_700_000_000_001))
        #expect(afterRestart["n1"] > lost["n1"])
        #expect(afterRestart.compare(to: lost) == .after)
    }

    @Test func theFloorNeverLowersACounter() {
        let high = VectorClock(["n1": 5 << 40])
        #expect(high.incremented(at: "n1", atLeast: 7)["n1"] == (5 << 40) + 1)
    }
}
