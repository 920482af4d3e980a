import Testing

@testable import RosterSim

/// The scale table's claims, at sizes a test can afford: a write reaches every node within the
/// targets, the cluster goes quiet after a cold start, and idle traffic does not grow with the
/// cluster. These are counts of virtual rounds and bytes, not wall-clock times, so they hold on
/// any machine.
@Suite("Scale by simulation")
struct ScaleBenchmarkTests {
    @Test("a write reaches 99.9 % of 60 nodes within 6 rounds and all within 10; idle bytes do not grow with n")
    func spreadAndIdleTrafficStayWithinTheTargets() async {
        let (small, large) = await onSimulationQueue {
            (ScaleBenchmark.measure(nodes: 6, writes: 5), ScaleBenchmark.measure(nodes: 60, writes: 5))
        }
        for row in [small, large] {
            #expect(row.millisToFullView != Int64.max, "\(row.nodes) nodes never all saw each other")
            #expect(row.millisToQuiet != Int64.max, "\(row.nodes) nodes never stopped gossiping the join")
            #expect(row.millisTo999 <= 6 * ScaleBenchmark.roundMillis)
            #expect(row.millisToAll <= 10 * ScaleBenchmark.roundMillis)
        }
        // Ten times the nodes: a node's own idle traffic stays put (names are one digit longer).
        #expect(large.idleMembershipBytes < small.idleMembershipBytes * 1.15)
        #expect(large.idleReplicationBytes == small.idleReplicationBytes)
        // Under writes a node sends far more than idle: the window measured something.
        #expect(large.writeReplicationBytes > 50 * large.idleReplicationBytes)
    }

    @Test("the table states whether the targets were met")
    func verdictsNameMetAndMissed() async {
        var row = await onSimulationQueue { ScaleBenchmark.measure(nodes: 4, writes: 1) }
        #expect(ScaleBenchmark.verdicts([row]).contains { $0.hasSuffix("met.") })
        row.millisToAll = Int64.max
        #expect(ScaleBenchmark.verdicts([row]).contains { $0.hasSuffix("**missed**.") })
    }
}
