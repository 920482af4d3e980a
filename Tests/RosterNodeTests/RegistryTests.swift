import Foundation
import RosterCore
import Testing
@testable import RosterNode

@Suite struct RegistryTests {
    func ttlInstance(_ id: String, ttl: Int64 = 2, deregisterAfter: Int64? = nil) -> ServiceInstance {
        makeInstance(id, checks: [
            HealthCheck(checkID: "service:\(id)", name: "ttl", kind: .ttl, ttl: .seconds(ttl),
                        deregisterCriticalServiceAfter: deregisterAfter.map { .seconds($0) })
        ])
    }

    @Test func aTTLCheckNotRenewedGoesCriticalAndARenewalKeepsItPassing() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        let registry = try await openRegistry(dir, clock: clock.nodeClock)
        _ = try await registry.register(ttlInstance("a"), status: nil)
        _ = try await registry.register(ttlInstance("b"), status: nil)
        _ = try await registry.updateCheck("service:a", status: .passing, output: "ok")
        _ = try await registry.updateCheck("service:b", status: .passing, output: "ok")
        clock.advance(milliseconds: 1_500)
        _ = try await registry.heartbeat("b", service: "web")
        clock.advance(milliseconds: 1_000)
        await registry.sweep()
        #expect(await registry.instance("a")?.checks[0].status == .critical)
        #expect(await registry.instance("a")?.checks[0].output.contains("TTL expired") == true)
        #expect(await registry.instance("b")?.checks[0].status == .passing)
    }

    @Test func aRenewalHeardAtAnotherNodeKeepsTheOwnersTTLAlive() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        let registry = try await openRegistry(dir, clock: clock.nodeClock)
        _ = try await registry.register(ttlInstance("a"), status: nil)
        _ = try await registry.updateCheck("service:a", status: .passing, output: "ok")
        clock.advance(milliseconds: 1_500)
        let heardAt = clock.nodeClock.wallMillis()
        await registry.applyRenewals([LeaseRenewal(instanceID: "a", checkIDs: [], wallMillis: heardAt)])
        clock.advance(milliseconds: 1_000)
        await registry.sweep()
        #expect(await registry.instance("a")?.checks[0].status == .passing, "the owner re-armed the TTL")
        #expect(await registry.instance("a")?.lastHeartbeat.millisecondsSinceEpoch == heardAt)
        clock.advance(milliseconds: 1_100)
        await registry.sweep()
        #expect(await registry.instance("a")?.checks[0].status == .critical, "and it still expires without more")
    }

    @Test func heartbeatsAndTTLPassesAreHandedOutForBatching() async throws {
        let dir = TemporaryDirectory()
        let registry = try await openRegistry(dir)
        let heard = LockedBox<[LeaseRenewal]>([])
        await registry.setRenewalHandler { renewal in heard.mutate { $0.append(renewal) } }
        _ = try await registry.register(ttlInstance("a"), status: nil)
        _ = try await registry.heartbeat("a", service: "web")
        _ = try await registry.updateCheck("service:a", status: .passing, output: nil)
        _ = try await registry.updateCheck("service:a", status: .passing, output: nil)
        #expect(heard.value.map(\.checkIDs) == [[], ["service:a"], ["service:a"]])
    }

    @Test func tombstonesAreCollectedAfterTheGraceAndACollectedOneCannotComeBack() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        let registry = try await openRegistry(dir, clock: clock.nodeClock)
        _ = try await registry.register(makeInstance("a"), status: nil)
        _ = try await registry.deregister("a")
        let tombstone = try #require(await registry.recordForTesting("a"))
        #expect(tombstone.isTombstone)
        clock.advance(milliseconds: 59_000)
        #expect(await registry.collectTombstones(grace: .seconds(60)) == 0)
        clock.advance(milliseconds: 1_000)
        #expect(await registry.collectTombstones(grace: .seconds(60)) == 1)
        #expect(await registry.recordForTesting("a") == nil)
        // A peer that has not collected yet sends it back: it stays gone.
        #expect(await registry.applyRemote([tombstone]).isEmpty)
        #expect(await registry.recordForTesting("a") == nil)
        // A new registration is a new version and is accepted.
        _ = try await registry.register(makeInstance("a"), status: nil)
        #expect(await registry.instance("a") != nil)
    }

    @Test func deregisterCriticalServiceAfterRemovesTheInstance() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        let registry = try await openRegistry(dir, clock: clock.nodeClock)
        // A new TTL check starts critical, as in Consul, so the window runs from registration.
        _ = try await registry.register(ttlInstance("a", ttl: 1, deregisterAfter: 3), status: nil)
        clock.advance(milliseconds: 1_000)
        await registry.sweep()
        #expect(await registry.instance("a") != nil)
        clock.advance(milliseconds: 1_999)
        await registry.sweep()
        #expect(await registry.instance("a") != nil)
        clock.advance(milliseconds: 1)
        await registry.sweep()
        #expect(await registry.instance("a") == nil)
    }

    @Test func aHeartbeatPassesCriticalTTLChecksAndRenewsLastHeartbeat() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        let registry = try await openRegistry(dir, clock: clock.nodeClock)
        let registered = try #require(try await registry.register(ttlInstance("a"), status: nil).instance)
        #expect(registered.checks[0].status == .critical)
        clock.advance(milliseconds: 500)
        let beat = try #require(try await registry.heartbeat("a", service: "web").instance)
        #expect(beat.checks[0].status == .passing)
        #expect(beat.lastHeartbeat.millisecondsSinceEpoch == registered.lastHeartbeat.millisecondsSinceEpoch + 500)
        await #expect(throws: RegistryError.self) { _ = try await registry.heartbeat("nope", service: "web") }
    }

    @Test func aBlockingWaitWakesOnlyForItsOwnService() async throws {
        let dir = TemporaryDirectory()
        let registry = try await openRegistry(dir)
        _ = try await registry.register(makeInstance("a-1", service: "a"), status: nil)
        let index = registry.index(for: .service("a"))
        let waiter = Task { await registry.waitForChange(.service("a"), after: index, timeout: .seconds(30)) }
        _ = try await registry.register(makeInstance("b-1", service: "b"), status: nil)
        #expect(registry.index(for: .service("a")) == index, "a write to b leaves a's index alone")
        _ = try await registry.register(makeInstance("a-2", service: "a"), status: nil)
        let woke = await waiter.value
        #expect(woke > index)
    }

    @Test func theFirstChangeToAServiceGetsAnIndexAboveWhatAnEmptyReadReported() async throws {
        let dir = TemporaryDirectory()
        let registry = try await openRegistry(dir)
        let empty = registry.index(for: .service("web"))
        #expect(empty >= 1, "never 0: clients treat it specially")
        let waiter = Task { await registry.waitForChange(.service("web"), after: empty, timeout: .seconds(30)) }
        _ = try await registry.register(makeInstance("web-1"), status: nil)
        #expect(await waiter.value > empty, "a blocking query started on the empty service wakes on its first registration")
    }

    @Test func aBlockingWaitReturnsWhenItsTimeRunsOut() async throws {
        let dir = TemporaryDirectory()
        let registry = try await openRegistry(dir)
        let index = registry.index(for: .service("quiet"))
        let started = ContinuousClock.now
        let result = await registry.waitForChange(.service("quiet"), after: index, timeout: .milliseconds(200))
        #expect(result == index)
        #expect(ContinuousClock.now - started >= .milliseconds(200))
    }

    @Test func releasingWaitersEndsBlockingQueriesAtShutdown() async throws {
        let dir = TemporaryDirectory()
        let registry = try await openRegistry(dir)
        let index = registry.index(for: .all)
        let waiter = Task { await registry.waitForChange(.all, after: index, timeout: .seconds(600)) }
        await registry.releaseWaiters()
        _ = await waiter.value  // returns; a hang here fails the test by its time limit
    }
}

@Suite struct ChangeFeedTests {
    func event(_ i: UInt64, _ id: String, service: String = "web") -> ChangeEvent {
        ChangeEvent(index: i, kind: .updated, serviceName: service, instanceID: id, instance: nil)
    }

    @Test func aSlowSubscriberGetsTheLatestChangePerInstance() async {
        let feed = ChangeFeed(capacity: 100)
        let subscription = feed.subscribe()
        for i in 1...5 { feed.publish(event(UInt64(i), "a")) }
        feed.publish(event(6, "b"))
        #expect(await subscription.next() == .change(event(5, "a")))
        #expect(await subscription.next() == .change(event(6, "b")))
    }

    @Test func overflowingTheBufferYieldsAResyncMarkerWithoutBlockingThePublisher() async {
        let feed = ChangeFeed(capacity: 10)
        let subscription = feed.subscribe()
        for i in 0..<50 { feed.publish(event(UInt64(i), "i\(i)")) }
        #expect(await subscription.next() == .overflowed)
    }

    @Test func aServiceSubscriptionSeesOnlyThatService() async {
        let feed = ChangeFeed()
        let subscription = feed.subscribe(service: "api")
        feed.publish(event(1, "w", service: "web"))
        feed.publish(event(2, "a", service: "api"))
        #expect(await subscription.next() == .change(event(2, "a", service: "api")))
    }

    @Test func droppingASubscriptionUnsubscribes() {
        let feed = ChangeFeed()
        var subscription: ChangeFeed.Subscription? = feed.subscribe()
        #expect(feed.subscriberCount == 1)
        _ = subscription
        subscription = nil
        #expect(feed.subscriberCount == 0)
    }
}

@Suite struct WatchSupportTests {
    @Test func aNudgeIsDeliveredOnceWithoutLosingLaterChanges() async {
        let feed = ChangeFeed()
        let subscription = feed.subscribe()
        subscription.nudge()  // whether or not anyone is waiting yet, the nudge is delivered
        #expect(await subscription.next() == .idle)
        feed.publish(ChangeEvent(index: 1, kind: .updated, serviceName: "web", instanceID: "a", instance: nil))
        #expect(await subscription.next() == .change(ChangeEvent(index: 1, kind: .updated, serviceName: "web", instanceID: "a", instance: nil)))
    }

    @Test func changesSinceAnIndexGiveTheLatestStateOfEachChangedKey() async throws {
        let dir = TemporaryDirectory()
        let registry = try await openRegistry(dir)
        _ = try await registry.register(makeInstance("a"), status: nil)
        let mark = await registry.modifyIndex
        _ = try await registry.register(makeInstance("b"), status: nil)
        _ = try await registry.register(makeInstance("c", service: "api"), status: nil)
        _ = try await registry.deregister("b")
        let (all, complete) = await registry.changes(since: mark, service: nil)
        #expect(complete)
        #expect(all.map(\.instanceID) == ["c", "b"])
        #expect(all.last?.kind == .deregistered)
        #expect(await registry.changes(since: mark, service: "api").events.map(\.instanceID) == ["c"])
    }

    @Test func closingAllSubscriptionsEndsThem() async {
        let feed = ChangeFeed()
        let subscription = feed.subscribe()
        let waiting = Task { await subscription.next() }
        while feed.subscriberCount == 1 { feed.closeAll() }
        #expect(await waiting.value == nil)
    }
}

@Suite struct ResetTests {
    func record(_ registry: Registry, _ id: String) async -> Record? { await registry.recordForTesting(id) }

    @Test func aNodeWhoseLastSyncPredatesAPeersHorizonDropsWhatIsOlderAndKeepsWhatIsNewer() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        let registry = try await openRegistry(dir, clock: clock.nodeClock)
        _ = try await registry.register(makeInstance("old"), status: nil)
        let oldStamp = try #require(await record(registry, "old")).stamp
        clock.advance(milliseconds: 10_000)
        _ = try await registry.register(makeInstance("new"), status: nil)
        // A peer collected tombstones up to a stamp just after "old" was written.
        let horizon = HLCTimestamp(physicalMillis: oldStamp.physicalMillis + 1, logical: 0)
        await registry.resetIfStale(peerHorizon: horizon, peer: "n2")
        #expect(await registry.instance("old") == nil, "older than the horizon: dropped, to be refilled by anti-entropy")
        #expect(await registry.instance("new") != nil, "newer than the horizon: kept")
        // The reset is remembered: the same horizon does not reset again, even after a restart.
        _ = try await registry.register(makeInstance("old"), status: nil)
        await registry.resetIfStale(peerHorizon: horizon, peer: "n2")
        #expect(await registry.instance("old") != nil)
    }

    @Test func aNodeInContactIsNotReset() async throws {
        let dir = TemporaryDirectory()
        let registry = try await openRegistry(dir)
        _ = try await registry.register(makeInstance("a"), status: nil)
        await registry.noteSynced()
        let stamp = try #require(await record(registry, "a")).stamp
        await registry.resetIfStale(peerHorizon: stamp, peer: "n2")
        #expect(await registry.instance("a") != nil)
    }

    @Test func collectingTombstonesRaisesAndPersistsTheHorizon() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        do {
            let registry = try await openRegistry(dir, clock: clock.nodeClock)
            _ = try await registry.register(makeInstance("a"), status: nil)
            _ = try await registry.deregister("a")
            clock.advance(milliseconds: 61_000)
            #expect(await registry.collectTombstones(grace: .seconds(60)) == 1)
        }
        let reopened = try await openRegistry(dir, clock: clock.nodeClock)
        let directives = await reopened.startAntiEntropy(replicator: Replicator(node: "n1"), peers: ["n2"], seed: 1)
        guard case .send(.digest(_, _, let horizon, _), _) = directives.first else {
            Issue.record("expected a digest")
            return
        }
        #expect(horizon > .zero, "the horizon survives a restart and travels in digests")
    }
}

extension ResetTests {
    @Test func aStaleSendersDigestIsAnsweredWithOursInsteadOfReconciling() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        let registry = try await openRegistry(dir, clock: clock.nodeClock)
        _ = try await registry.register(makeInstance("a"), status: nil)
        _ = try await registry.deregister("a")
        clock.advance(milliseconds: 61_000)
        _ = await registry.collectTombstones(grace: .seconds(60))
        let stale = ReplicationMessage.digest(root: 1, count: 1, horizon: .zero, lastSync: HLCTimestamp(physicalMillis: 1, logical: 0))
        let (reply, _) = await registry.handleDigest(stale, from: "n3", replicator: Replicator(node: "n1"))
        guard case .send(.digest(_, _, let horizon, _), "n3") = reply.first else {
            Issue.record("expected our digest back, got \(reply)")
            return
        }
        #expect(horizon > .zero, "so that n3 resets before it reconciles")
        let current = ReplicationMessage.digest(root: 1, count: 1, horizon: .zero, lastSync: horizon)
        let (engaged, _) = await registry.handleDigest(current, from: "n3", replicator: Replicator(node: "n1"))
        guard case .send(.bucketDigest, _) = engaged.first else {
            Issue.record("a current peer is reconciled with, got \(engaged)")
            return
        }
    }
}
