import Testing

@testable import RosterCore

/// The health-check state machine, ownership and the probe schedule, all on manual time.
@Suite struct CheckStateMachineTests {
    func httpCheck(successBefore: Int = 0, failuresBefore: Int = 0) -> HealthCheck {
        HealthCheck(
            checkID: "service:a", name: "http", kind: .http, target: "http://127.0.0.1:9/health",
            interval: .seconds(1), successBeforePassing: successBefore, failuresBeforeCritical: failuresBefore)
    }

    @Test func httpStatusCodesMapAsInConsul() {
        #expect(ProbeResult.httpStatus(200) == .passing)
        #expect(ProbeResult.httpStatus(204) == .passing)
        #expect(ProbeResult.httpStatus(299) == .passing)
        #expect(ProbeResult.httpStatus(429) == .warning)
        #expect(ProbeResult.httpStatus(301) == .critical)
        #expect(ProbeResult.httpStatus(404) == .critical)
        #expect(ProbeResult.httpStatus(503) == .critical)
    }

    @Test func withoutThresholdsEveryResultShowsAtOnceAndOutputIsKept() {
        var check = httpCheck()
        var progress = CheckProgress()
        #expect(check.record(.init(status: .passing, output: "200 OK"), progress: &progress))
        #expect(check.status == .passing && check.output == "200 OK")
        #expect(!check.record(.init(status: .passing, output: "200 OK"), progress: &progress), "nothing changed")
        #expect(check.record(.init(status: .warning, output: "429"), progress: &progress))
        #expect(check.record(.init(status: .critical, output: "refused"), progress: &progress))
        #expect(check.status == .critical && check.output == "refused")
    }

    @Test func failuresBeforeCriticalNeedsThatManyFailuresInARow() {
        var check = httpCheck(failuresBefore: 3)
        check.status = .passing
        var progress = CheckProgress()
        for _ in 0..<2 { #expect(!check.record(.init(status: .critical, output: "down"), progress: &progress)) }
        // A success in between starts the count again.
        _ = check.record(.init(status: .passing, output: ""), progress: &progress)
        for _ in 0..<2 { #expect(!check.record(.init(status: .critical, output: "down"), progress: &progress)) }
        #expect(check.status == .passing)
        #expect(check.record(.init(status: .critical, output: "down"), progress: &progress))
        #expect(check.status == .critical)
    }

    @Test func successBeforePassingNeedsThatManySuccessesInARow() {
        var check = httpCheck(successBefore: 2)
        var progress = CheckProgress()
        #expect(!check.record(.init(status: .passing, output: "ok"), progress: &progress))
        #expect(check.status == .critical, "a new check starts critical, as in Consul")
        #expect(check.record(.init(status: .passing, output: "ok"), progress: &progress))
        #expect(check.status == .passing)
    }

    @Test func anInstanceFollowsItsChecksOnlyBetweenRunningAndUnhealthy() {
        var instance = makeInstance("a")
        instance.checks = [httpCheck()]
        #expect(instance.followingChecks().status == .unhealthy)
        instance.status = .unhealthy
        instance.checks[0].status = .warning
        #expect(instance.followingChecks().status == .running, "warning is not unhealthy")
        for own in [ServiceStatus.starting, .stopping, .stopped, .unknown] {
            instance.status = own
            instance.checks[0].status = .critical
            #expect(instance.followingChecks().status == own, "\(own) is the service's own statement")
        }
    }

    @Test func aProbeResultForAnOldDefinitionIsIgnored() throws {
        var state = RegistryState()
        var instance = makeInstance("a")
        instance.checks = [httpCheck()]
        _ = state.apply(state.nextRecord(key: "a", serviceName: "web", instance: instance, node: "n1", stamp: HLCTimestamp(physicalMillis: 1, logical: 0)))
        let probed = try #require(ActiveCheck(instance: instance, check: instance.checks[0]))
        var redefined = probed
        redefined.target = "http://127.0.0.1:9/other"
        var progress = CheckProgress()
        #expect(state.prepareProbeResult(redefined, result: .init(status: .passing, output: ""), progress: &progress) == nil)
        let updated = state.prepareProbeResult(probed, result: .init(status: .passing, output: "200 OK"), progress: &progress)
        #expect(updated?.checks[0].status == .passing)
        #expect(updated?.status == .running)
    }

    @Test func theDefaultTimeoutIsTenSecondsButNeverLongerThanTheInterval() {
        var check = httpCheck()
        #expect(check.effectiveTimeoutMillis == 1_000)
        check.interval = .seconds(30)
        #expect(check.effectiveTimeoutMillis == 10_000)
        check.timeout = .seconds(2)
        #expect(check.effectiveTimeoutMillis == 2_000)
    }
}

@Suite struct ClusterViewTests {
    func instance(_ id: String, via node: String) -> ServiceInstance { makeInstance(id, node: node) }

    @Test func theRegisteringNodeOwnsWhileLive() {
        let view = ClusterView(me: "n1", live: ["n1", "n2", "n3"], down: [], known: 3, settled: true)
        #expect(view.owner(of: instance("a", via: "n2")) == "n2")
        #expect(!view.owns(instance("a", via: "n2")))
        #expect(view.owns(instance("b", via: "n1")))
    }

    @Test func everyNodeAgreesOnTheTakerAndTheChecksSpreadOverTheSurvivors() {
        let views = ["n1", "n3", "n4", "n5"].map {
            ClusterView(me: $0, live: ["n1", "n3", "n4", "n5"], down: ["n2"], known: 5, settled: true)
        }
        var takers: [NodeID: Int] = [:]
        for i in 0..<4_000 {
            let orphan = instance("svc-\(i)", via: "n2")
            let owners = Set(views.map { $0.owner(of: orphan) })
            #expect(owners.count == 1, "all survivors name the same owner")
            #expect(views.filter { $0.owns(orphan) }.count == 1, "exactly one survivor probes")
            takers[owners.first!!, default: 0] += 1
        }
        #expect(takers.count == 4)
        #expect(takers.values.allSatisfy { (800...1_200).contains($0) }, "spread: \(takers)")
    }

    @Test func theFirstOwnerTakesItsChecksBackWhenItReturns() {
        let orphan = instance("a", via: "n2")
        let whileDown = ClusterView(me: "n1", live: ["n1", "n3"], down: ["n2"], known: 3, settled: true)
        let back = ClusterView(me: "n1", live: ["n1", "n2", "n3"], down: [], known: 3, settled: true)
        #expect(whileDown.owner(of: orphan) != "n2")
        #expect(back.owner(of: orphan) == "n2")
    }

    @Test func anUnknownNodeCountsAsGoneOnlyOnceSettled() {
        let orphan = instance("a", via: "n9")
        let joining = ClusterView(me: "n1", live: ["n1"], down: [], known: 1, settled: false)
        #expect(joining.owner(of: orphan) == nil, "not joined yet: n9 may well be alive")
        let settled = ClusterView(me: "n1", live: ["n1", "n2"], down: [], known: 2, settled: true)
        #expect(settled.owner(of: orphan) != nil)
    }

    @Test func anUnsettledNodeRunsNoChecksNotEvenItsOwn() {
        let starting = ClusterView(me: "n1", live: ["n1"], down: [], known: 1, settled: false)
        #expect(starting.owner(of: instance("a", via: "n1")) == "n1")
        #expect(!starting.owns(instance("a", via: "n1")))
    }

    @Test func selfPreservationStartsBelowHalfAndNeverInATwoNodeCluster() {
        #expect(!ClusterView(me: "n1", live: ["n1"], down: ["n2"], known: 2, settled: true).selfPreserving)
        #expect(!ClusterView(me: "n1", live: ["n1", "n2"], down: ["n3"], known: 3, settled: true).selfPreserving)
        #expect(ClusterView(me: "n1", live: ["n1"], down: ["n2", "n3"], known: 3, settled: true).selfPreserving)
        #expect(ClusterView(me: "n1", live: ["n1", "n2"], down: ["n3", "n4", "n5"], known: 5, settled: true).selfPreserving)
        #expect(!ClusterView.solo("n1").selfPreserving)
    }

    @Test func aSelfPreservingNodeKeepsToItsOwnInstances() {
        let cutOff = ClusterView(me: "n1", live: ["n1"], down: ["n2", "n3"], known: 3, settled: true)
        #expect(cutOff.owns(instance("mine", via: "n1")))
        #expect(cutOff.owner(of: instance("theirs", via: "n2")) == nil)
    }

    @Test func aDoubtingNodePausesExpiryButKeepsItsOwnershipAndTakesOver() {
        let doubting = ClusterView(me: "n1", live: ["n1", "n3"], down: ["n2"], known: 3, settled: true, doubting: true)
        #expect(!doubting.selfPreserving)
        #expect(doubting.pausesExpiry)
        #expect(!ClusterView(me: "n1", live: ["n1", "n3"], down: ["n2"], known: 3, settled: true).pausesExpiry)
        #expect(ClusterView(me: "n1", live: ["n1"], down: ["n2", "n3"], known: 3, settled: true).pausesExpiry)
        #expect(doubting.owns(instance("mine", via: "n1")))
        let orphan = (0..<100).map { "orphan-\($0)" }.first { ClusterView.rendezvous($0, among: ["n1", "n3"]) == "n1" }!
        #expect(doubting.owns(instance(orphan, via: "n2")), "probing is harmless; only judging TTLs waits")
    }

    @Test func leftMembersDoNotCountTowardsSelfPreservation() {
        let me = MemberIdentity(name: "n1", generation: 1, address: "a:1")
        let members = [
            Member(identity: me, state: .alive, incarnation: 0),
            Member(identity: .init(name: "n2", generation: 1, address: "a:2"), state: .left, incarnation: 0),
            Member(identity: .init(name: "n3", generation: 1, address: "a:3"), state: .left, incarnation: 0),
        ]
        let view = ClusterView(me: "n1", members: members, settled: true)
        #expect(!view.selfPreserving)
        #expect(view.down == ["n2", "n3"])
    }
}

@Suite struct ProbeScheduleTests {
    func check(_ id: String, interval: Int64 = 10_000) -> ActiveCheck {
        ActiveCheck(instanceID: id, checkID: "service:\(id)", kind: .http, target: "http://h/\(id)", intervalMillis: interval, timeoutMillis: 1_000)
    }

    @Test func manyNewChecksSpreadOverTheirIntervalInsteadOfFiringTogether() {
        var schedule = ProbeSchedule()
        var rng = SplitMix64(seed: 7)
        schedule.reconcile((0..<10_000).map { check("c\($0)") }, now: 0, using: &rng)
        var perSecond: [Int] = []
        for second in 1...10 {
            perSecond.append(schedule.takeDue(now: Int64(second) * 1_000, limit: .max).count)
        }
        #expect(perSecond.reduce(0, +) == 10_000)
        #expect(perSecond.allSatisfy { (800...1_200).contains($0) }, "per second: \(perSecond)")
    }

    @Test func aCheckNeverRunsTwiceAtOnceAndRunsAgainAnIntervalLater() {
        var schedule = ProbeSchedule()
        var rng = SplitMix64(seed: 1)
        let c = check("a", interval: 1_000)
        schedule.reconcile([c], now: 0, using: &rng)
        #expect(schedule.takeDue(now: 1_000, limit: 10) == [c])
        #expect(schedule.takeDue(now: 5_000, limit: 10).isEmpty, "still running")
        schedule.finished(c, started: 1_000, now: 1_200, using: &rng)
        #expect(schedule.takeDue(now: 1_900, limit: 10).isEmpty)
        #expect(schedule.takeDue(now: 2_050, limit: 10) == [c])
    }

    @Test func theConcurrencyLimitIsRespected() {
        var schedule = ProbeSchedule()
        var rng = SplitMix64(seed: 2)
        schedule.reconcile((0..<100).map { check("c\($0)") }, now: 0, using: &rng)
        #expect(schedule.takeDue(now: 20_000, limit: 30).count == 30)
        #expect(schedule.takeDue(now: 20_000, limit: 30).count == 30)
        #expect(schedule.runningCount == 60)
    }

    @Test func reconcileKeepsUnchangedChecksInPlaceAndDropsTheRest() {
        var schedule = ProbeSchedule()
        var rng = SplitMix64(seed: 3)
        schedule.reconcile([check("a"), check("b")], now: 0, using: &rng)
        var moved = check("b")
        moved.target = "http://elsewhere"
        let (added, removed) = schedule.reconcile([check("a"), moved], now: 0, using: &rng)
        #expect(added == 1 && removed == 0)
        let (_, removedAll) = schedule.reconcile([], now: 0, using: &rng)
        #expect(removedAll == 2 && schedule.count == 0)
        #expect(schedule.takeDue(now: .max, limit: 10).isEmpty, "removed checks never come due")
    }
}
