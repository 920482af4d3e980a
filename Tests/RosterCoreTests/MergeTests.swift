import Testing
@testable import RosterCore

@Suite struct MergeTests {
    func record(_ clock: [String: UInt64], stamp: Int64, origin: String, deleted: Bool = false, port: Int = 1) -> Record {
        Record(
            key: "k", serviceName: "web", instance: deleted ? nil : makeInstance("k", port: port), clock: VectorClock(clock),
            stamp: HLCTimestamp(physicalMillis: stamp, logical: 0), origin: origin)
    }

    @Test func aDominatingClockWinsEvenWithAnOlderStamp() {
        let older = record(["a": 1], stamp: 500, origin: "a", port: 1)
        let newer = record(["a": 1, "b": 1], stamp: 100, origin: "b", port: 2)
        #expect(Record.merge(older, newer).instance?.port == 2)
        #expect(Record.merge(newer, older).instance?.port == 2)
    }

    @Test func concurrentWritesAreDecidedByTheHigherStamp() {
        let left = record(["a": 1], stamp: 200, origin: "a", port: 1)
        let right = record(["b": 1], stamp: 300, origin: "b", port: 2)
        let merged = Record.merge(left, right)
        #expect(merged.instance?.port == 2)
        #expect(merged.clock == VectorClock(["a": 1, "b": 1]), "the result carries the join of both clocks")
    }

    @Test func onAStampTieADeleteBeatsAWrite() {
        let write = record(["a": 1], stamp: 300, origin: "z")
        let delete = record(["b": 1], stamp: 300, origin: "a", deleted: true)
        #expect(Record.merge(write, delete).isTombstone)
        #expect(Record.merge(delete, write).isTombstone)
    }

    @Test func thenTheLargerOriginWins() {
        let a = record(["a": 1], stamp: 300, origin: "a", port: 1)
        let b = record(["b": 1], stamp: 300, origin: "b", port: 2)
        #expect(Record.merge(a, b).origin == "b")
        #expect(Record.merge(b, a).origin == "b")
    }

    @Test func applyingAConcurrentVersionReportsAResolvedConflict() {
        var state = RegistryState()
        state.apply(record(["a": 1], stamp: 200, origin: "a", port: 1))
        let change = state.apply(record(["b": 1], stamp: 300, origin: "b", port: 2))
        #expect(change?.resolvedConflict == true)
        #expect(state.apply(record(["a": 2, "b": 1], stamp: 400, origin: "a", port: 3))?.resolvedConflict == false)
    }

    @Test func anOldRegistrationArrivingLateDoesNotResurrectADeletedInstance() {
        var state = RegistryState()
        let registration = state.nextRecord(key: "k", serviceName: "web", instance: makeInstance("k"), node: "a",
                                            stamp: HLCTimestamp(physicalMillis: 10, logical: 0))
        state.apply(registration)
        let deletion = state.nextRecord(key: "k", serviceName: "web", instance: nil, node: "a",
                                        stamp: HLCTimestamp(physicalMillis: 20, logical: 0))
        state.apply(deletion)
        #expect(state.apply(registration) == nil, "a stale record changes nothing")
        #expect(state.instance("k") == nil)
        // Only a later registration brings it back.
        let again = state.nextRecord(key: "k", serviceName: "web", instance: makeInstance("k"), node: "b",
                                     stamp: HLCTimestamp(physicalMillis: 30, logical: 0))
        state.apply(again)
        #expect(state.instance("k") != nil)
    }

    /// Records from random multi-writer histories, where each node stamps a write after
    /// observing what it supersedes, as the real write path does.
    @Test(arguments: 0..<40)
    func mergeIsCommutativeAssociativeAndIdempotentOverRandomHistories(round: Int) {
        let seed = UInt64.random(in: 0...UInt64.max)
        let history = History.random(seed: seed, keys: ["k"])
        let records = history.records
        var rng = SeededRandom(seed: seed)
        for _ in 0..<200 {
            let x = records.randomElement(using: &rng)!
            let y = records.randomElement(using: &rng)!
            let z = records.randomElement(using: &rng)!
            #expect(Record.merge(x, y) == Record.merge(y, x), "commutativity, seed \(seed)")
            #expect(Record.merge(Record.merge(x, y), z) == Record.merge(x, Record.merge(y, z)), "associativity, seed \(seed)")
            #expect(Record.merge(x, x) == x, "idempotence, seed \(seed)")
            // A causally later record always carries a larger stamp: the premise of the laws.
            if x.clock.compare(to: y.clock) == .before { #expect(x.stamp < y.stamp, "seed \(seed)") }
        }
    }

    @Test(arguments: 0..<20)
    func anyDeliveryOrderConvergesToTheSameState(round: Int) {
        let seed = UInt64.random(in: 0...UInt64.max)
        let history = History.random(seed: seed, keys: ["k1", "k2", "k3"], steps: 80)
        var rng = SeededRandom(seed: seed)
        var reference = RegistryState()
        for record in history.records { reference.apply(record) }
        for _ in 0..<10 {
            var state = RegistryState()
            // Shuffled, with duplicates.
            for record in (history.records + history.records.prefix(10)).shuffled(using: &rng) { state.apply(record) }
            #expect(state.records == reference.records, "seed \(seed)")
            #expect(state.liveCount == reference.records.values.filter { !$0.isTombstone }.count, "seed \(seed)")
        }
    }
}
