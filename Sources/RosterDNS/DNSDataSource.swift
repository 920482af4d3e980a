import RosterCore
import RosterNode

/// What the resolver needs to know about the registry and the cluster, and nothing more, so
/// that it can be tested with an in-memory table and no node at all.
public protocol DNSDataSource: Sendable {
    /// The healthy instances of `service`, narrowed to those carrying `tag` if one is given.
    ///
    /// Both arrive in lower case, because DNS names are case-insensitive (RFC 4343): an
    /// implementation must match them without regard to ASCII case. The resolver checks
    /// health and the tag again, so an implementation may return more, never fewer.
    func healthyInstances(service: String, tag: String?) async -> [ServiceInstance]

    /// The address (IPv4 or IPv6 text) of the cluster node called `name`, in lower case.
    func nodeAddress(_ name: String) async -> String?
}

/// The data source of a running node: instances from its `Registry`, node addresses from the
/// cluster's member list, which the caller passes as a closure so that this target does not
/// depend on how membership is wired.
public struct RegistryDNSDataSource: DNSDataSource {
    public let registry: Registry
    public let nodes: @Sendable () async -> [(name: String, address: String)]

    public init(registry: Registry, nodes: @escaping @Sendable () async -> [(name: String, address: String)]) {
        self.registry = registry
        self.nodes = nodes
    }

    /// Tries the exact (indexed) names first, which is the common case of services registered
    /// in lower case; only if that finds nothing does it look for the service and tag under
    /// another case, which costs a scan of the service names.
    public func healthyInstances(service: String, tag: String?) async -> [ServiceInstance] {
        var equals: [(IndexedField, String)] = [(.service, service)]
        if let tag { equals.append((.tag, tag)) }
        let exact = await registry.query(InstanceFilter(equals: equals, healthyOnly: true))
        if !exact.isEmpty { return exact }

        let names = await registry.serviceCounts().keys.filter { $0.lowercased() == service }
        var found: [ServiceInstance] = []
        for name in names {
            let filter = InstanceFilter(
                equals: [(.service, name)], healthyOnly: true,
                predicate: { instance in tag.map { tag in instance.tags.contains { $0.lowercased() == tag } } ?? true })
            found += await registry.query(filter)
        }
        return found
    }

    public func nodeAddress(_ name: String) async -> String? {
        await nodes().first { $0.name.lowercased() == name }?.address
    }
}
