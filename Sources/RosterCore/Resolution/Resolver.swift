/// The state behind instance resolution: round-robin cursors and outstanding leases.
///
/// Pure and synchronous: the caller supplies the candidates (the healthy instances of one
/// service) and the randomness, and keeps the value somewhere safe (the HTTP layer holds it
/// behind a lock). Every resolution takes a lease on the instance it returns, whatever the
/// strategy, so `least_connections` sees all load; `release` gives a lease back.
///
/// Cursors are keyed by strategy, service and, for `region_aware`, the chosen tier as named by the
/// instances (never by what a caller sent), so the number of cursors is bounded by what is
/// registered. A lease count is dropped when it reaches 0.
public struct Resolver: Sendable {
    private var cursors: [String: UInt] = [:]
    private var leases: [String: Int] = [:]

    public init() {}

    /// Leases outstanding on an instance.
    public func inFlight(_ instanceID: String) -> Int { leases[instanceID] ?? 0 }

    /// Every instance with outstanding leases.
    public var outstandingLeases: [String: Int] { leases }

    /// Picks one of `candidates` and takes a lease on it. Nil if there are no candidates.
    public mutating func resolve(
        service: String, among candidates: [ServiceInstance], strategy: ResolutionStrategy,
        caller: ResolutionCaller = ResolutionCaller(), using rng: inout some RandomNumberGenerator
    ) -> Resolution? {
        guard !candidates.isEmpty else { return nil }
        // A stable order, so turns and seeded picks do not depend on how the query returned them.
        let sorted = candidates.sorted { $0.instanceID < $1.instanceID }
        let picked: ServiceInstance
        var tier: LocalityTier?
        switch strategy {
        case .roundRobin:
            picked = nextInTurn(sorted, key: "round_robin/\(service)")
        case .random:
            picked = sorted.randomElement(using: &rng)!
        case .weighted:
            picked = weightedPick(sorted, using: &rng)
        case .leastConnections:
            picked = leastLoaded(sorted, key: "least_connections/\(service)")
        case .regionAware:
            let (chosenTier, members, tierKey) = Resolver.tier(of: sorted, for: caller)
            tier = chosenTier
            picked = nextInTurn(members, key: "region_aware/\(service)/\(tierKey)")
        }
        let count = leases[picked.instanceID, default: 0] + 1
        leases[picked.instanceID] = count
        return Resolution(instance: picked, strategy: strategy, tier: tier, inFlight: count)
    }

    /// Gives back one lease on an instance and returns how many remain.
    /// - Throws: `RegistryError.notFound` if the instance has no outstanding lease.
    @discardableResult
    public mutating func release(_ instanceID: String) throws(RegistryError) -> Int {
        guard let count = leases[instanceID], count > 0 else {
            throw RegistryError.notFound(field: "instance_id", message: "instance '\(instanceID)' has no outstanding lease")
        }
        let remaining = count - 1
        leases[instanceID] = remaining == 0 ? nil : remaining
        return remaining
    }

    /// Forgets the cursors of a service, e.g. when it is gone.
    public mutating func forget(service: String) {
        cursors = cursors.filter { key, _ in key.split(separator: "/", maxSplits: 2).dropFirst().first.map(String.init) != service }
    }

    // MARK: - Strategies

    private mutating func nextInTurn(_ sorted: [ServiceInstance], key: String) -> ServiceInstance {
        let cursor = cursors[key, default: 0]
        cursors[key] = cursor &+ 1
        return sorted[Int(cursor % UInt(sorted.count))]
    }

    private func weightedPick(_ sorted: [ServiceInstance], using rng: inout some RandomNumberGenerator) -> ServiceInstance {
        // Weights are validated to 0...1_000_000, so the sum of any realistic set fits easily.
        let total = sorted.reduce(0) { $0 + max($1.weight, 0) }
        guard total > 0 else { return sorted.randomElement(using: &rng)! }
        var point = Int.random(in: 0..<total, using: &rng)
        for instance in sorted where instance.weight > 0 {
            if point < instance.weight { return instance }
            point -= instance.weight
        }
        // Unreachable: the points cover exactly the positive weights.
        return sorted.last { $0.weight > 0 }!
    }

    /// The fewest leases wins; among equals, the first at or after the cursor, which then moves
    /// past it, so ties are taken in turn.
    private mutating func leastLoaded(_ sorted: [ServiceInstance], key: String) -> ServiceInstance {
        let n = sorted.count
        let start = Int(cursors[key, default: 0] % UInt(n))
        var best = start
        for step in 1..<max(n, 1) {
            let i = (start + step) % n
            if inFlight(sorted[i].instanceID) < inFlight(sorted[best].instanceID) { best = i }
        }
        cursors[key] = UInt(best + 1)
        return sorted[best]
    }

    /// The nearest non-empty tier for the caller, and a cursor key named by the instances' own
    /// zone and region.
    static func tier(of sorted: [ServiceInstance], for caller: ResolutionCaller) -> (LocalityTier, [ServiceInstance], String) {
        if let zone = caller.zone {
            let inZone = sorted.filter { $0.zone == zone && (caller.region == nil || $0.region == caller.region) }
            if let first = inZone.first { return (.zone, inZone, "zone=\(first.region ?? "")/\(zone)") }
        }
        if let region = caller.region {
            let inRegion = sorted.filter { $0.region == region }
            if !inRegion.isEmpty { return (.region, inRegion, "region=\(region)") }
        }
        return (.any, sorted, "any")
    }
}
