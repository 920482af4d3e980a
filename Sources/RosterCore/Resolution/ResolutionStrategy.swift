/// How `GET /registry/resolve/{service}` picks one instance among the healthy ones.
public enum ResolutionStrategy: String, Sendable, Hashable, CaseIterable {
    /// Each instance in turn, per service.
    case roundRobin = "round_robin"
    /// Uniformly at random.
    case random
    /// At random in proportion to `weight`; weight 0 is never chosen unless every weight is 0.
    case weighted
    /// The instance with the fewest outstanding leases; ties in turn.
    case leastConnections = "least_connections"
    /// The caller's zone if it has a healthy instance, else the caller's region, else anywhere;
    /// in turn within that tier.
    case regionAware = "region_aware"

    public static let `default` = ResolutionStrategy.roundRobin

    /// Accepts the canonical names, case-insensitively and with `-` for `_`.
    public init?(name: String) {
        self.init(rawValue: String(name.lowercased().map { $0 == "-" ? "_" : $0 }))
    }

    /// The names a client may pass, for error messages.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// Where the caller of a resolution is, for `region_aware`.
public struct ResolutionCaller: Sendable, Hashable {
    public var region: String?
    public var zone: String?

    public init(region: String? = nil, zone: String? = nil) {
        self.region = region.flatMap { $0.isEmpty ? nil : $0 }
        self.zone = zone.flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// Which set of instances `region_aware` chose from.
public enum LocalityTier: String, Sendable, Hashable {
    /// The caller's zone (within the caller's region, if it gave one).
    case zone
    /// The caller's region.
    case region
    /// Every candidate: nothing healthy is near the caller, or it did not say where it is.
    case any
}

/// The outcome of one resolution.
public struct Resolution: Sendable, Hashable {
    public var instance: ServiceInstance
    public var strategy: ResolutionStrategy
    /// For `region_aware`, the tier the instance came from.
    public var tier: LocalityTier?
    /// Leases now outstanding on the instance, this one included.
    public var inFlight: Int
}
