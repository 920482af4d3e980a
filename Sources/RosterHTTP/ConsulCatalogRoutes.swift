import Foundation
import Hummingbird
import RosterCore
import RosterNode

/// Consul's `/v1/catalog/*`, `/v1/health/*` and `/v1/status/*`: cluster-wide reads. All reads
/// answer `X-Consul-Index` and support blocking queries.
struct ConsulCatalogRoutes {
    let api: APIContext
    let cache = ResponseCache()

    func add(to router: Router<BasicRequestContext>) {
        router.get("v1/catalog/services") { request, _ in try await catalogServices(request) }
        router.get("v1/catalog/service/:name") { request, context in
            try await catalogService(request, name: context.parameters.require("name"))
        }
        router.get("v1/catalog/nodes") { request, _ in try await catalogNodes(request) }
        router.get("v1/health/service/:name") { request, context in
            try await healthService(request, name: context.parameters.require("name"))
        }
        router.get("v1/health/checks/:name") { request, context in
            try await healthChecks(request, name: context.parameters.require("name"))
        }
        router.get("v1/health/state/:state") { request, context in
            try await healthState(request, state: context.parameters.require("state"))
        }
        router.get("v1/status/leader") { _, _ in
            // Leaderless: each node answers with itself, so tools that wait for "a leader" proceed.
            try JSONSupport.response("\(api.node.address):\(api.node.clusterPort)")
        }
        router.get("v1/status/peers") { _, _ in
            try JSONSupport.response(await api.members().filter { $0.state == .alive }.map { "\($0.address):\($0.port)" })
        }
    }

    // MARK: - Catalog

    func catalogServices(_ request: Request) async throws -> Response {
        try await BlockingQuery.waitIfAsked(request, api: api, scope: .all)
        let index = api.registry.index(for: .all)
        return try JSONSupport.response(await api.registry.serviceTags(), headers: ConsulHeaders.index(index))
    }

    func catalogService(_ request: Request, name: String) async throws -> Response {
        try await BlockingQuery.waitIfAsked(request, api: api, scope: .service(name))
        let (instances, index) = await api.registry.service(name, filter: tagFilter(request))
        let members = await api.members()
        let body = instances.map { i in
            let address = api.address(of: i.node, in: members)
            return ConsulCatalogService(
                Node: i.node, Address: address, Datacenter: api.node.datacenter,
                TaggedAddresses: ["lan": address, "wan": address], ServiceID: i.instanceID, ServiceName: i.serviceName,
                ServiceTags: i.tags, ServiceAddress: i.host, ServicePort: i.port, ServiceMeta: i.metadata,
                ServiceWeights: ConsulWeights(passing: i.weight, warning: 1), CreateIndex: index, ModifyIndex: index)
        }
        return try JSONSupport.response(body, headers: ConsulHeaders.index(index))
    }

    func catalogNodes(_ request: Request) async throws -> Response {
        try await BlockingQuery.waitIfAsked(request, api: api, scope: .all)
        let index = api.registry.index(for: .all)
        let nodes = await api.members().filter { $0.state != .left }.map {
            ConsulNode(name: $0.name, address: $0.address, datacenter: api.node.datacenter)
        }
        return try JSONSupport.response(nodes, headers: ConsulHeaders.index(index))
    }

    // MARK: - Health

    func healthService(_ request: Request, name: String) async throws -> Response {
        try await BlockingQuery.waitIfAsked(request, api: api, scope: .service(name))
        let query = request.uri.form
        let passingOnly = query.flag("passing")
        let tags = query.all("tag")
        // Answers embed member state (node health checks), so the cache entry is tied to the
        // membership version too; reading it costs no actor hop, unlike the member list.
        let fingerprint = Int(truncatingIfNeeded: api.membershipVersion())
        // Length-prefixed tags: `?tag=a,b` and `?tag=a&tag=b` must not share an entry.
        let cacheKey = "\(name)|\(passingOnly)|" + tags.map { "\($0.utf8.count):\($0)" }.joined()
        let current = api.registry.index(for: .service(name))
        if let body = cache.get(cacheKey, index: current, fingerprint: fingerprint) {
            return JSONSupport.response(bytes: body, headers: ConsulHeaders.index(current))
        }
        let (instances, index) = await api.registry.service(name, filter: InstanceFilter(equals: tags.map { (.tag, $0) }))
        let members = await api.members()
        var entries: [ConsulHealthEntry] = []
        for instance in instances {
            let checks = consulChecks(of: instance, members: members, index: index)
            if passingOnly && checks.contains(where: { $0.Status != "passing" }) { continue }
            let address = api.address(of: instance.node, in: members)
            entries.append(
                ConsulHealthEntry(
                    Node: ConsulNode(name: instance.node, address: address, datacenter: api.node.datacenter),
                    Service: ConsulAgentService(instance, datacenter: api.node.datacenter), Checks: checks))
        }
        let body = ByteBuffer(bytes: try JSONEncoder().encode(entries))
        cache.put(cacheKey, index: index, fingerprint: fingerprint, body: body)
        return JSONSupport.response(bytes: body, headers: ConsulHeaders.index(index))
    }

    func healthChecks(_ request: Request, name: String) async throws -> Response {
        try await BlockingQuery.waitIfAsked(request, api: api, scope: .service(name))
        let (instances, index) = await api.registry.service(name)
        let checks = instances.flatMap { i in i.checks.map { ConsulCheck($0, of: i, index: index) } }
        return try JSONSupport.response(checks, headers: ConsulHeaders.index(index))
    }

    func healthState(_ request: Request, state: String) async throws -> Response {
        let wanted = state.lowercased()
        guard wanted == "any" || CheckStatus(rawValue: wanted) != nil else {
            throw APIError(.badRequest, field: "state", message: "'\(state)' is not any, passing, warning or critical")
        }
        try await BlockingQuery.waitIfAsked(request, api: api, scope: .all)
        let index = api.registry.index(for: .all)
        let checks = await api.registry.query(InstanceFilter()).flatMap { i in
            i.checks.filter { wanted == "any" || $0.status.rawValue == wanted }.map { ConsulCheck($0, of: i, index: index) }
        }
        return try JSONSupport.response(checks, headers: ConsulHeaders.index(index))
    }

    /// The node's health check, the service's checks, and, when the instance is not RUNNING,
    /// a synthetic check carrying its lifecycle status: Consul clients know nothing of
    /// lifecycles, but they do leave out instances with a failing check.
    func consulChecks(of instance: ServiceInstance, members: [MemberView], index: UInt64) -> [ConsulCheck] {
        let nodeAlive = members.first { $0.name == instance.node }.map { $0.state == .alive || $0.state == .suspect } ?? true
        var checks = [ConsulCheck(nodeHealthOf: instance.node, alive: nodeAlive, index: index)]
        checks += instance.checks.map { ConsulCheck($0, of: instance, index: index) }
        if instance.status != .running {
            var lifecycle = HealthCheck(
                checkID: "roster:status", name: "Roster lifecycle status", kind: .ttl, status: .critical,
                output: "instance is \(instance.status.rawValue)")
            lifecycle.notes = "critical until the instance reports RUNNING"
            checks.append(ConsulCheck(lifecycle, of: instance, index: index))
        }
        return checks
    }

    private func tagFilter(_ request: Request) -> InstanceFilter {
        InstanceFilter(equals: request.uri.form.all("tag").map { (.tag, $0) })
    }
}
