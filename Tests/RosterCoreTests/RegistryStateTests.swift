import Testing
@testable import RosterCore

@Suite struct RegistryStateTests {
    func stamp(_ ms: Int64) -> HLCTimestamp { HLCTimestamp(physicalMillis: ms, logical: 0) }

    @Test func indexedQueriesMatchABruteForceScan() {
        let seed = UInt64.random(in: 0...UInt64.max)
        var rng = SeededRandom(seed: seed)
        var state = RegistryState()
        var time: Int64 = 0
        for _ in 0..<400 {
            time += 1
            let id = "i\(Int.random(in: 0..<80, using: &rng))"
            var instance: ServiceInstance? = makeInstance(
                id, service: ["web", "api", "db"].randomElement(using: &rng)!,
                tags: Array(["a", "b", "c"].shuffled(using: &rng).prefix(Int.random(in: 0...2, using: &rng))),
                status: ServiceStatus.allCases.randomElement(using: &rng)!)
            instance?.region = ["eu", "us", nil].randomElement(using: &rng)!
            instance?.version = ["1.0", "2.0"].randomElement(using: &rng)!
            if Int.random(in: 0..<5, using: &rng) == 0 { instance = nil }
            let record = state.nextRecord(key: id, serviceName: instance?.serviceName ?? state.record(for: id)?.serviceName ?? "web",
                                          instance: instance, node: "n", stamp: stamp(time))
            state.apply(record)
        }
        let live = state.records.values.compactMap(\.instance)
        for service in ["web", "api", "db"] {
            for tag in ["a", "b", "c"] {
                for region in ["eu", "us"] {
                    let filter = InstanceFilter(equals: [(.service, service), (.tag, tag), (.region, region)], healthyOnly: true)
                    let expected = live.filter { $0.serviceName == service && $0.tags.contains(tag) && $0.region == region && $0.isHealthy }
                        .map(\.instanceID).sorted()
                    #expect(state.query(filter).map(\.instanceID) == expected, "seed \(seed)")
                }
            }
        }
        #expect(state.liveCount == live.count)
        #expect(state.serviceCounts == Dictionary(grouping: live, by: \.serviceName).mapValues(\.count))
    }

    @Test func reRegistrationKeepsRegisteredAtAndUnchangedCheckState() {
        var state = RegistryState()
        var first = makeInstance("web-1")
        first.checks = [HealthCheck(checkID: "service:web-1", name: "ttl", kind: .ttl, ttl: .seconds(10), status: .passing)]
        state.apply(state.nextRecord(key: "web-1", serviceName: "web", instance: first, node: "n", stamp: stamp(1)))
        var again = first
        again.checks[0].status = .critical
        again.tags = ["new"]
        let later = Timestamp(millisecondsSinceEpoch: first.registeredAt.millisecondsSinceEpoch + 5000)
        let (prepared, created) = state.prepareRegistration(again, requestedStatus: nil, now: later)
        #expect(!created)
        #expect(prepared.registeredAt == first.registeredAt)
        #expect(prepared.checks[0].status == .passing)
        #expect(prepared.tags == ["new"])
    }

    @Test func statusMovesAreCheckedAgainstTheLifecycle() throws {
        var state = RegistryState()
        state.apply(state.nextRecord(key: "web-1", serviceName: "web", instance: makeInstance("web-1", status: .stopped), node: "n", stamp: stamp(1)))
        #expect(throws: RegistryError.self) { try state.prepareStatusMove("web-1", service: "web", to: .running) }
        #expect(throws: RegistryError.self) { try state.prepareStatusMove("web-1", service: "other", to: .stopped) }
        #expect(try state.prepareStatusMove("web-1", service: nil, to: .stopped).status == .stopped)
    }

    @Test func checkUpdatesFindTheirInstanceAndReportNoChangeAsNil() throws {
        var state = RegistryState()
        var instance = makeInstance("web-1")
        instance.checks = [HealthCheck(checkID: "service:web-1", name: "ttl", kind: .ttl, ttl: .seconds(10))]
        state.apply(state.nextRecord(key: "web-1", serviceName: "web", instance: instance, node: "n", stamp: stamp(1)))
        let updated = try #require(try state.prepareCheckUpdate("service:web-1", status: .passing, output: "ok"))
        #expect(updated.checks[0].status == .passing)
        state.apply(state.nextRecord(key: "web-1", serviceName: "web", instance: updated, node: "n", stamp: stamp(2)))
        #expect(try state.prepareCheckUpdate("service:web-1", status: .passing, output: "ok") == nil)
        #expect(throws: RegistryError.self) { try state.prepareCheckUpdate("service:nope", status: .passing, output: nil) }
    }
}

@Suite struct CheckTimersTests {
    @Test func aTTLExpiresOnceAfterItsPeriodUnlessRenewed() {
        var timers = CheckTimers()
        let ref = CheckTimers.CheckRef(instanceID: "web-1", checkID: "c")
        timers.renew(ref, ttl: .seconds(2), now: 0)
        #expect(timers.expiredTTLs(now: 1_999).isEmpty)
        timers.renew(ref, ttl: .seconds(2), now: 1_500)
        #expect(timers.expiredTTLs(now: 3_000).isEmpty)
        #expect(timers.expiredTTLs(now: 3_500) == [ref])
        #expect(timers.expiredTTLs(now: 9_000).isEmpty, "reported once, then disarmed")
    }

    @Test func deregistrationWaitsForTheCriticalWindow() {
        var timers = CheckTimers()
        var instance = makeInstance("web-1")
        instance.checks = [HealthCheck(checkID: "c", name: "c", kind: .ttl, ttl: .seconds(1), deregisterCriticalServiceAfter: .seconds(3), status: .critical)]
        timers.observe(instance, now: 1_000)
        #expect(!timers.shouldDeregister(instance, now: 3_999))
        #expect(timers.shouldDeregister(instance, now: 4_000))
        instance.checks[0].status = .passing
        timers.observe(instance, now: 4_100)
        #expect(!timers.shouldDeregister(instance, now: 100_000), "recovery clears the window")
    }
}
