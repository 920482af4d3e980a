import Foundation
import RosterCore
import Testing

@testable import RosterNode

/// Check ownership, takeover and self-preservation at the registry (node "n1"), on manual time.
@Suite struct RegistryHealthTests {
    let everyoneUp = ClusterView(me: "n1", live: ["n1", "n2", "n3"], down: [], known: 3, settled: true)
    let n2Down = ClusterView(me: "n1", live: ["n1", "n3"], down: ["n2"], known: 3, settled: true)
    let cutOff = ClusterView(me: "n1", live: ["n1"], down: ["n2", "n3"], known: 3, settled: true)

    /// An instance registered through `node`, with a passing 2 s TTL check, as a peer's record.
    func remoteTTLInstance(_ id: String, via node: String) -> Record {
        var check = HealthCheck(checkID: "service:\(id)", name: "ttl", kind: .ttl, ttl: .seconds(2))
        check.status = .passing
        let instance = makeInstance(id, node: node, checks: [check])
        return RegistryState().nextRecord(
            key: id, serviceName: "web", instance: instance, node: node, stamp: HLCTimestamp(physicalMillis: 1, logical: 0))
    }

    /// A registry that owns "a", critical for a while (2 s TTL, removed after 3 s critical),
    /// and "b", just passed (2 s TTL), with every member up.
    func registryWithTwoTTLInstances(_ dir: TemporaryDirectory, clock: ManualClock) async throws -> Registry {
        let registry = try await openRegistry(dir, clock: clock.nodeClock)
        await registry.updateView(everyoneUp)
        var check = HealthCheck(
            checkID: "service:a", name: "ttl", kind: .ttl, ttl: .seconds(2), deregisterCriticalServiceAfter: .seconds(3))
        check.status = .critical
        _ = try await registry.register(makeInstance("a", checks: [check]), status: nil)
        _ = try await registry.register(makeInstance("b", checks: [HealthCheck(checkID: "service:b", name: "ttl", kind: .ttl, ttl: .seconds(2))]), status: nil)
        _ = try await registry.updateCheck("service:b", status: .passing, output: nil)
        return registry
    }

    /// An instance whose owner is n1 or n3 (by rendezvous over them) once n2 is down.
    func orphanOwnedBy(_ owner: NodeID) -> String {
        (0..<100).map { "orphan-\($0)" }.first { ClusterView.rendezvous($0, among: ["n1", "n3"]) == owner }!
    }

    @Test func aFailedOwnersTTLChecksAreJudgedByTheTakerOnItsOwnClock() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        let registry = try await openRegistry(dir, clock: clock.nodeClock)
        await registry.updateView(everyoneUp)
        let mine = orphanOwnedBy("n1")
        let theirs = orphanOwnedBy("n3")
        _ = await registry.applyRemote([remoteTTLInstance(mine, via: "n2"), remoteTTLInstance(theirs, via: "n2")])
        clock.advance(milliseconds: 5_000)
        await registry.sweep()
        #expect(await registry.instance(mine)?.checks[0].status == .passing, "n2 is alive and judges its own TTLs")

        await registry.updateView(n2Down)
        clock.advance(milliseconds: 1_999)
        await registry.sweep()
        #expect(await registry.instance(mine)?.checks[0].status == .passing, "the taker gives a full TTL from the takeover")
        clock.advance(milliseconds: 1)
        await registry.sweep()
        #expect(await registry.instance(mine)?.checks[0].status == .critical)
        #expect(await registry.instance(mine)?.status == .unhealthy, "the instance follows its check")
        #expect(await registry.instance(theirs)?.checks[0].status == .passing, "n3 judges that one, not n1")
    }

    @Test func aSelfPreservingNodeExpiresNothingAndResumesWithAFullPeriodWhenItReconnects() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        let registry = try await registryWithTwoTTLInstances(dir, clock: clock)

        await registry.updateView(cutOff)
        #expect(await registry.isSelfPreserving)
        clock.advance(milliseconds: 10_000)
        await registry.sweep()
        #expect(await registry.instance("a") != nil, "no removal of critical instances while cut off")
        #expect(await registry.instance("b")?.checks[0].status == .passing, "no TTL expiry while cut off")

        await registry.updateView(n2Down)
        #expect(await registry.isSelfPreserving == false)
        clock.advance(milliseconds: 1_000)
        await registry.sweep()
        #expect(await registry.instance("a") == nil, "critical for longer than 3 s: removed once judging resumed")
        clock.advance(milliseconds: 2_000 + Registry.resumeGraceMillis - 1_001)
        await registry.sweep()
        #expect(
            await registry.instance("b")?.checks[0].status == .passing,
            "the TTL restarted when the node reconnected, with time for peers to forward renewals again")
        clock.advance(milliseconds: 1)
        await registry.sweep()
        #expect(await registry.instance("b")?.checks[0].status == .critical)
    }

    @Test func aNodeThatDoubtsItselfExpiresNothingAndResumesWithAFullPeriodAndTheGrace() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        let registry = try await registryWithTwoTTLInstances(dir, clock: clock)

        // Its peers still look alive, but its own probes fail with nobody nacking.
        let doubting = ClusterView(me: "n1", live: ["n1", "n2", "n3"], down: [], known: 3, settled: true, doubting: true)
        await registry.updateView(doubting)
        #expect(await registry.isSelfPreserving == false)
        clock.advance(milliseconds: 10_000)
        await registry.sweep()
        #expect(await registry.instance("a") != nil, "no removal of critical instances while in doubt")
        #expect(await registry.instance("b")?.checks[0].status == .passing, "no TTL expiry while in doubt")
        #expect(await registry.ownedActiveChecks().isEmpty, "TTL checks are not probed")

        await registry.updateView(everyoneUp)
        clock.advance(milliseconds: 2_000 + Registry.resumeGraceMillis - 1)
        await registry.sweep()
        #expect(await registry.instance("b")?.checks[0].status == .passing, "a full TTL and the grace from the end of the doubt")
        clock.advance(milliseconds: 1)
        await registry.sweep()
        #expect(await registry.instance("b")?.checks[0].status == .critical)
    }

    @Test func aRestartedNodeGivesItsOwnTTLsTheGraceOnceItSettles() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        do {
            let registry = try await openRegistry(dir, clock: clock.nodeClock)
            _ = try await registry.register(makeInstance("b", checks: [HealthCheck(checkID: "service:b", name: "ttl", kind: .ttl, ttl: .seconds(2))]), status: nil)
            _ = try await registry.updateCheck("service:b", status: .passing, output: nil)
            await registry.close()
        }
        let registry = try await Registry.open(nodeID: "n1", dataDir: dir.path, clock: clock.nodeClock, logger: quietLogger)
        clock.advance(milliseconds: 60_000)
        await registry.sweep()
        #expect(await registry.instance("b")?.checks[0].status == .passing, "nothing is judged before the node settles")

        // Settled: peers may still see the old life as failed and send their renewals elsewhere.
        await registry.updateView(everyoneUp)
        clock.advance(milliseconds: 2_000 + Registry.resumeGraceMillis - 1)
        await registry.sweep()
        #expect(await registry.instance("b")?.checks[0].status == .passing)
        clock.advance(milliseconds: 1)
        await registry.sweep()
        #expect(await registry.instance("b")?.checks[0].status == .critical)
    }

    @Test func probeResultsOfOwnedChecksAreWritesAndOthersAreIgnored() async throws {
        let dir = TemporaryDirectory()
        let registry = try await openRegistry(dir)
        await registry.updateView(everyoneUp)
        let http = HealthCheck(
            checkID: "service:a", name: "http", kind: .http, target: "http://127.0.0.1:1/", interval: .seconds(1))
        _ = try await registry.register(makeInstance("a", checks: [http]), status: nil)
        _ = await registry.applyRemote([remoteTTLInstance("b", via: "n2")])
        let owned = await registry.ownedActiveChecks()
        #expect(owned.map(\.instanceID) == ["a"], "TTL checks are not probed, and n2 probes its own")

        let before = await registry.modifyIndex
        await registry.recordProbe(owned[0], result: ProbeResult(status: .passing, output: "HTTP GET: 200 OK"))
        #expect(await registry.instance("a")?.checks[0].status == .passing)
        #expect(await registry.modifyIndex > before, "a status change is a write")
        let after = await registry.modifyIndex
        await registry.recordProbe(owned[0], result: ProbeResult(status: .passing, output: "HTTP GET: 200 OK"))
        #expect(await registry.modifyIndex == after, "an unchanged result writes nothing")
    }
}
