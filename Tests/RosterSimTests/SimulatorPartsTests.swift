import RosterCore
import Testing

@testable import RosterSim

/// The simulator's own parts: if these were wrong, the sweep would prove nothing.
@Suite("Simulator parts")
struct SimulatorPartsTests {
    func record(_ key: String, counter: UInt64) -> Record {
        Record(
            key: key, serviceName: "svc", instance: nil, clock: VectorClock(["n0": counter]),
            stamp: HLCTimestamp(physicalMillis: Int64(counter), logical: 0), origin: "n0")
    }

    @Test("events run in time order, and in scheduling order at the same time")
    func eventQueueOrdersByTimeThenInsertion() {
        var queue = EventQueue<String>()
        queue.schedule("c", at: 5)
        queue.schedule("a", at: 1)
        queue.schedule("d", at: 5)
        queue.schedule("b", at: 3)
        var order: [String] = []
        while let (_, event) = queue.pop() { order.append(event) }
        #expect(order == ["a", "b", "c", "d"])
    }

    @Test("group commit: nothing is durable before its batch's fsync, and appends during a flush wait for the next")
    func groupCommitDurableOnlyAfterFsync() {
        var wal = SimWAL()
        var disk = SimDisk()
        let first = wal.append(record("a", counter: 1))
        #expect(first.startFlush)
        let second = wal.append(record("b", counter: 1))
        #expect(!second.startFlush, "a flush is already running; b waits for the next batch")
        #expect(disk.records.isEmpty)
        #expect(wal.durableSeq == 0)
        let again = wal.completeFlush(into: &disk)
        #expect(wal.durableSeq == first.seq)
        #expect(disk.records.keys.sorted() == ["a"])
        #expect(again, "b was pending, so the next flush starts")
        // A crash now (the node is dropped with its log) loses b: it was never on disk.
        #expect(disk.records["b"] == nil)
    }

    @Test("a crash loses what was not fsync'd, and the restarted node recovers what was")
    func crashLosesOnlyUnsyncedWrites() {
        var config = SimConfig(seed: 3)
        config.nodeCount = 1
        let sim = Simulation(config: config)
        sim.runsWorkload = false
        sim.start(0)
        guard var node = sim.nodes[0] else { Issue.record("node did not start"); return }
        let instance = ServiceInstance(
            serviceName: "svc", instanceID: "kept", host: "h", port: 1, registeredAt: Timestamp(millisecondsSinceEpoch: 0), node: "n0")
        _ = node.commitLocal(key: "kept", serviceName: "svc", instance: instance, now: 0)
        _ = node.wal.completeFlush(into: &sim.disks[0])
        var lost = instance
        lost.instanceID = "lost"
        _ = node.commitLocal(key: "lost", serviceName: "svc", instance: lost, now: 1)
        sim.nodes[0] = node
        sim.crash(0)
        sim.start(0)
        #expect(sim.nodes[0]?.state.instance("kept") != nil)
        #expect(sim.nodes[0]?.state.instance("lost") == nil)
        #expect(sim.generations[0] == 2)
    }

    @Test("a one-way cut stops traffic in one direction only, and overlapping cuts heal separately")
    func cutsAreDirectedAndCounted() {
        var network = SimNetwork(nodeCount: 3, delay: 1...1, lossRate: 0, duplicateRate: 0)
        network.cut(from: 0, to: 1)
        #expect(!network.passes(from: 0, to: 1))
        #expect(network.passes(from: 1, to: 0))
        network.cut(from: 0, to: 1)
        network.uncut(from: 0, to: 1)
        #expect(!network.passes(from: 0, to: 1), "the second cut still holds")
        network.uncut(from: 0, to: 1)
        #expect(network.passes(from: 0, to: 1))
    }

    @Test("the lost-write check flags an acknowledged write that the final state does not cover")
    func lostWriteCheckCatchesALostWrite() {
        var config = SimConfig(seed: 5)
        config.nodeCount = 1
        let sim = Simulation(config: config)
        sim.start(0)
        let phantom = Record(
            key: "ghost", serviceName: "svc", instance: nil, clock: VectorClock(["n0": 9]),
            stamp: HLCTimestamp(physicalMillis: 1, logical: 0), origin: "n0")
        sim.history.acked.append(AckedWrite(record: phantom, node: 0, at: 0))
        #expect(sim.lostWrites().count == 1)
    }
}
