import Testing
@testable import RosterCore

@Suite struct ResolutionTests {
    private func instance(
        _ id: String, weight: Int = 1, region: String? = nil, zone: String? = nil, service: String = "web"
    ) -> ServiceInstance {
        var i = makeInstance(id, service: service)
        i.weight = weight
        i.region = region
        i.zone = zone
        return i
    }

    /// Resolves `count` times and counts the picks per instance id.
    private func tally(
        _ resolver: inout Resolver, _ candidates: [ServiceInstance], _ strategy: ResolutionStrategy, count: Int,
        caller: ResolutionCaller = ResolutionCaller(), rng: inout SeededRandom
    ) -> [String: Int] {
        var picks: [String: Int] = [:]
        for _ in 0..<count {
            let r = resolver.resolve(service: "web", among: candidates, strategy: strategy, caller: caller, using: &rng)
            picks[r!.instance.instanceID, default: 0] += 1
        }
        return picks
    }

    @Test func strategyNamesParse() {
        #expect(ResolutionStrategy(name: "round_robin") == .roundRobin)
        #expect(ResolutionStrategy(name: "Least-Connections") == .leastConnections)
        #expect(ResolutionStrategy(name: "region_aware") == .regionAware)
        #expect(ResolutionStrategy(name: "fastest") == nil)
        #expect(ResolutionStrategy.names == "round_robin, random, weighted, least_connections, region_aware")
    }

    @Test func nothingToResolveIsNil() {
        var resolver = Resolver()
        var rng = SeededRandom(seed: 1)
        for strategy in ResolutionStrategy.allCases {
            #expect(resolver.resolve(service: "web", among: [], strategy: strategy, using: &rng) == nil)
        }
        #expect(resolver.outstandingLeases.isEmpty)
    }

    @Test func roundRobinSpreadsExactlyEvenly() {
        var resolver = Resolver()
        var rng = SeededRandom(seed: 7)
        let candidates = [instance("c"), instance("a"), instance("b")]
        var order: [String] = []
        for _ in 0..<6 {
            order.append(resolver.resolve(service: "web", among: candidates, strategy: .roundRobin, using: &rng)!.instance.instanceID)
        }
        #expect(order == ["a", "b", "c", "a", "b", "c"])
        let picks = tally(&resolver, candidates.shuffled(), .roundRobin, count: 300, rng: &rng)
        #expect(picks == ["a": 100, "b": 100, "c": 100])
    }

    @Test func roundRobinCursorsArePerService() {
        var resolver = Resolver()
        var rng = SeededRandom(seed: 7)
        let web = [instance("w1"), instance("w2")]
        let api = [instance("a1", service: "api"), instance("a2", service: "api")]
        #expect(resolver.resolve(service: "web", among: web, strategy: .roundRobin, using: &rng)?.instance.instanceID == "w1")
        #expect(resolver.resolve(service: "api", among: api, strategy: .roundRobin, using: &rng)?.instance.instanceID == "a1")
        #expect(resolver.resolve(service: "web", among: web, strategy: .roundRobin, using: &rng)?.instance.instanceID == "w2")
        #expect(resolver.resolve(service: "api", among: api, strategy: .roundRobin, using: &rng)?.instance.instanceID == "a2")
    }

    @Test func randomTouchesEveryInstance() {
        var resolver = Resolver()
        var rng = SeededRandom(seed: 11)
        let candidates = [instance("a"), instance("b"), instance("c")]
        let picks = tally(&resolver, candidates, .random, count: 3_000, rng: &rng)
        #expect(picks.count == 3)
        for (id, count) in picks { #expect((800...1200).contains(count), "\(id): \(count)") }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func weightedApproximatesWeights(seed: UInt64) {
        var resolver = Resolver()
        var rng = SeededRandom(seed: seed)
        let candidates = [instance("a", weight: 2), instance("b", weight: 3), instance("c", weight: 5), instance("z", weight: 0)]
        let total = 10_000
        let picks = tally(&resolver, candidates, .weighted, count: total, rng: &rng)
        #expect(picks["z"] == nil, "weight 0 is never chosen")
        for (id, weight) in [("a", 2), ("b", 3), ("c", 5)] {
            let expected = Double(total * weight) / 10
            let observed = Double(picks[id] ?? 0)
            #expect(abs(observed - expected) <= expected * 0.05, "\(id): \(observed) picks, expected \(expected) ± 5%")
        }
    }

    @Test func weightedWithAllZeroWeightsPicksAmongAll() {
        var resolver = Resolver()
        var rng = SeededRandom(seed: 5)
        let candidates = [instance("a", weight: 0), instance("b", weight: 0)]
        let picks = tally(&resolver, candidates, .weighted, count: 1_000, rng: &rng)
        #expect(picks.keys.sorted() == ["a", "b"])
        #expect((400...600).contains(picks["a"] ?? 0))
    }

    @Test func regionAwareKeepsToTheCallersZoneThenRegionThenAnywhere() {
        var resolver = Resolver()
        var rng = SeededRandom(seed: 3)
        let everywhere = [
            instance("eu1-a", region: "eu", zone: "eu-1"), instance("eu1-b", region: "eu", zone: "eu-1"),
            instance("eu2-a", region: "eu", zone: "eu-2"),
            instance("us1-a", region: "us", zone: "us-1"), instance("us1-b", region: "us", zone: "us-1"),
        ]
        let inEU1 = ResolutionCaller(region: "eu", zone: "eu-1")

        // The caller's zone when it has instances, in turn.
        var picks = tally(&resolver, everywhere, .regionAware, count: 100, caller: inEU1, rng: &rng)
        #expect(picks == ["eu1-a": 50, "eu1-b": 50])
        #expect(resolver.resolve(service: "web", among: everywhere, strategy: .regionAware, caller: inEU1, using: &rng)?.tier == .zone)

        // Without the zone's instances: the rest of the region.
        let noEU1 = everywhere.filter { $0.zone != "eu-1" }
        picks = tally(&resolver, noEU1, .regionAware, count: 10, caller: inEU1, rng: &rng)
        #expect(picks == ["eu2-a": 10])
        #expect(resolver.resolve(service: "web", among: noEU1, strategy: .regionAware, caller: inEU1, using: &rng)?.tier == .region)

        // Without the region's: anywhere, in turn.
        let onlyUS = everywhere.filter { $0.region == "us" }
        picks = tally(&resolver, onlyUS, .regionAware, count: 10, caller: inEU1, rng: &rng)
        #expect(picks == ["us1-a": 5, "us1-b": 5])
        #expect(resolver.resolve(service: "web", among: onlyUS, strategy: .regionAware, caller: inEU1, using: &rng)?.tier == .any)

        // A caller that names only its region, or nothing.
        picks = tally(&resolver, everywhere, .regionAware, count: 30, caller: ResolutionCaller(region: "eu"), rng: &rng)
        #expect(picks == ["eu1-a": 10, "eu1-b": 10, "eu2-a": 10])
        picks = tally(&resolver, everywhere, .regionAware, count: 50, rng: &rng)
        #expect(picks.count == 5 && picks.values.allSatisfy { $0 == 10 })
    }

    @Test func regionAwareZoneMustBeInTheCallersRegion() {
        var resolver = Resolver()
        var rng = SeededRandom(seed: 3)
        // Zone names repeat across regions ("a"); the caller is in eu/a.
        let candidates = [instance("eu-a", region: "eu", zone: "a"), instance("us-a", region: "us", zone: "a"),
                          instance("eu-b", region: "eu", zone: "b")]
        let picks = tally(&resolver, candidates, .regionAware, count: 10, caller: ResolutionCaller(region: "eu", zone: "a"), rng: &rng)
        #expect(picks == ["eu-a": 10])
        let noEUA = candidates.filter { $0.instanceID != "eu-a" }
        let fallback = tally(&resolver, noEUA, .regionAware, count: 10, caller: ResolutionCaller(region: "eu", zone: "a"), rng: &rng)
        #expect(fallback == ["eu-b": 10])
    }

    @Test func leastConnectionsBalancesAndReleaseWorks() throws {
        var resolver = Resolver()
        var rng = SeededRandom(seed: 9)
        let candidates = [instance("a"), instance("b"), instance("c")]
        func next() -> String {
            resolver.resolve(service: "web", among: candidates, strategy: .leastConnections, using: &rng)!.instance.instanceID
        }
        // Equal load: taken in turn.
        #expect([next(), next(), next()] == ["a", "b", "c"])
        #expect(resolver.outstandingLeases == ["a": 1, "b": 1, "c": 1])
        // Freeing b makes it the least loaded, twice over.
        #expect(try resolver.release("b") == 0)
        #expect(next() == "b")
        #expect(try resolver.release("b") == 0)
        #expect(try resolver.release("a") == 0)
        #expect(Set([next(), next()]) == ["a", "b"])
        #expect(resolver.outstandingLeases == ["a": 1, "b": 1, "c": 1])

        // Many picks with no releases stay balanced within one.
        for _ in 0..<299 { _ = next() }
        let counts = resolver.outstandingLeases.values
        #expect(counts.max()! - counts.min()! <= 1 && counts.reduce(0, +) == 302)

        // A lease taken elsewhere counts too: c is loaded, so a and b are preferred.
        var loaded = Resolver()
        for _ in 0..<5 { _ = loaded.resolve(service: "web", among: [candidates[2]], strategy: .roundRobin, using: &rng) }
        var picked: [String] = []
        for _ in 0..<10 {
            picked.append(loaded.resolve(service: "web", among: candidates, strategy: .leastConnections, using: &rng)!.instance.instanceID)
        }
        #expect(picked.filter { $0 == "c" }.count == 0)
        #expect(loaded.inFlight("a") == 5 && loaded.inFlight("b") == 5 && loaded.inFlight("c") == 5)
    }

    @Test func releaseNeverGoesBelowZeroAndUnknownIsNotFound() throws {
        var resolver = Resolver()
        var rng = SeededRandom(seed: 1)
        #expect(throws: RegistryError.notFound(field: "instance_id", message: "instance 'ghost' has no outstanding lease")) {
            try resolver.release("ghost")
        }
        let r = resolver.resolve(service: "web", among: [instance("a")], strategy: .roundRobin, using: &rng)
        #expect(r?.inFlight == 1)
        _ = resolver.resolve(service: "web", among: [instance("a")], strategy: .roundRobin, using: &rng)
        #expect(resolver.inFlight("a") == 2)
        #expect(try resolver.release("a") == 1)
        #expect(try resolver.release("a") == 0)
        #expect(throws: RegistryError.self) { try resolver.release("a") }
        #expect(resolver.inFlight("a") == 0)
        #expect(resolver.outstandingLeases.isEmpty)
    }
}
