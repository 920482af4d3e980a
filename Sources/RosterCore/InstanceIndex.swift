/// The dimensions a query can filter on; each has its own inverted index.
public enum IndexedField: String, Sendable, CaseIterable, Hashable {
    case service, tag, capability, version, deployment, region, zone, status
}

/// Inverted indexes from a field value to the instance ids that carry it, so that a filtered
/// query intersects small sets instead of scanning every instance.
struct InstanceIndex: Sendable {
    private var sets: [IndexedField: [String: Set<String>]] = [:]

    static func values(of instance: ServiceInstance, for field: IndexedField) -> [String] {
        switch field {
        case .service: [instance.serviceName]
        case .tag: instance.tags
        case .capability: instance.capabilities
        case .version: instance.version.map { [$0] } ?? []
        case .deployment: instance.deployment.map { [$0.rawValue] } ?? []
        case .region: instance.region.map { [$0] } ?? []
        case .zone: instance.zone.map { [$0] } ?? []
        case .status: [instance.status.rawValue]
        }
    }

    /// Moves `key` from the entries of `old` to those of `new`, touching only fields that changed.
    mutating func update(key: String, from old: ServiceInstance?, to new: ServiceInstance?) {
        for field in IndexedField.allCases {
            let before = old.map { InstanceIndex.values(of: $0, for: field) } ?? []
            let after = new.map { InstanceIndex.values(of: $0, for: field) } ?? []
            if before == after { continue }
            for value in before where !after.contains(value) {
                sets[field]?[value]?.remove(key)
                if sets[field]?[value]?.isEmpty == true { sets[field]?[value] = nil }
            }
            for value in after { sets[field, default: [:]][value, default: []].insert(key) }
        }
    }

    func keys(_ field: IndexedField, _ value: String) -> Set<String> {
        sets[field]?[value] ?? []
    }

    func values(_ field: IndexedField) -> [String: Set<String>] {
        sets[field] ?? [:]
    }
}

/// A conjunction of equality filters over indexed fields, plus optional health and version-range
/// predicates that are checked on the already-narrowed candidates.
public struct InstanceFilter: Sendable, Equatable {
    public var equals: [(IndexedField, String)] = []
    public var healthyOnly = false
    /// An extra predicate for what no index answers (e.g. semver ranges, `passing` checks).
    public var predicate: (@Sendable (ServiceInstance) -> Bool)?

    public init(equals: [(IndexedField, String)] = [], healthyOnly: Bool = false,
                predicate: (@Sendable (ServiceInstance) -> Bool)? = nil) {
        self.equals = equals
        self.healthyOnly = healthyOnly
        self.predicate = predicate
    }

    public static func service(_ name: String) -> InstanceFilter {
        InstanceFilter(equals: [(.service, name)])
    }

    public static func == (a: InstanceFilter, b: InstanceFilter) -> Bool {
        a.healthyOnly == b.healthyOnly && a.predicate == nil && b.predicate == nil
            && a.equals.map { "\($0.0.rawValue)=\($0.1)" } == b.equals.map { "\($0.0.rawValue)=\($0.1)" }
    }

    func matches(_ instance: ServiceInstance) -> Bool {
        if healthyOnly && !instance.isHealthy { return false }
        return predicate?(instance) ?? true
    }
}
