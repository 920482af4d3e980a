import Hummingbird
import RosterCore
import RosterNode

/// Consul's `/v1/agent/*`: registration and checks against this node, and this node's view.
struct ConsulAgentRoutes {
    let api: APIContext

    func add(to router: Router<BasicRequestContext>) {
        let agent = router.group("v1/agent")
        agent.put("service/register") { request, _ in try await register(request) }
        agent.put("service/deregister/:id") { _, context in try await deregister(context.parameters.require("id")) }
        for (verb, status) in [("pass", CheckStatus.passing), ("warn", .warning), ("fail", .critical)] {
            agent.put("check/\(verb)/:id") { request, context in
                try await updateCheck(context.parameters.require("id"), status: status, output: request.uri.form.get("note"))
            }
        }
        agent.put("check/update/:id") { request, context in try await updateCheck(request, id: context.parameters.require("id")) }
        agent.get("services") { _, _ in try await services() }
        agent.get("service/:id") { _, context in try await service(context.parameters.require("id")) }
        agent.get("checks") { _, _ in try await checks() }
        agent.get("members") { _, _ in try await members() }
        agent.get("self") { _, _ in try await agentSelf() }
    }

    func register(_ request: Request) async throws -> Response {
        let body = try await JSONSupport.decode(ConsulServiceRegistration.self, from: request, limit: api.limits.maxBodyBytes)
        let instance = try body.instance(node: api.node)
        do {
            try api.validator.validate(instance, portRequired: false)
        } catch {
            throw ValidationError(field: ConsulAgentRoutes.consulFieldName(error.field), message: error.message)
        }
        // Consul has no lifecycle: a re-registration keeps the instance's status.
        _ = try await api.registry.register(instance, status: nil)
        return Response(status: .ok)
    }

    /// Names a field the way the Consul client sent it (`Port`, not `port`).
    static func consulFieldName(_ field: String) -> String {
        let names = [
            "service_name": "Name", "instance_id": "ID", "host": "Address", "port": "Port", "tags": "Tags",
            "metadata": "Meta", "weight": "Weights.Passing", "checks": "Checks",
        ]
        let head = field.prefix { $0 != "." && $0 != "[" }
        guard let mapped = names[String(head)] else { return field }
        return mapped + field.dropFirst(head.count)
    }

    func deregister(_ id: String) async throws -> Response {
        _ = try await api.registry.deregister(id)
        return Response(status: .ok)
    }

    func updateCheck(_ request: Request, id: String) async throws -> Response {
        let body = try await JSONSupport.decode(ConsulCheckUpdate.self, from: request, limit: api.limits.maxBodyBytes)
        let text = body.status ?? "passing"
        guard let status = CheckStatus(rawValue: text.lowercased()) else {
            throw APIError(.badRequest, field: "Status", message: "'\(text)' is not passing, warning or critical")
        }
        return try await updateCheck(id, status: status, output: body.output)
    }

    func updateCheck(_ id: String, status: CheckStatus, output: String?) async throws -> Response {
        if let output, output.utf8.count > api.limits.maxNoteLength {
            throw APIError(.badRequest, field: "note", message: "is longer than \(api.limits.maxNoteLength) bytes")
        }
        _ = try await api.registry.updateCheck(id, status: status, output: output)
        return Response(status: .ok)
    }

    /// Consul's agent endpoints list what this agent owns: instances registered through it.
    private func ownInstances() async -> [ServiceInstance] {
        await api.registry.query(InstanceFilter()).filter { $0.node == api.node.name }
    }

    func services() async throws -> Response {
        var result: [String: ConsulAgentService] = [:]
        for instance in await ownInstances() {
            result[instance.instanceID] = ConsulAgentService(instance, datacenter: api.node.datacenter)
        }
        return try JSONSupport.response(result)
    }

    func service(_ id: String) async throws -> Response {
        guard let instance = await api.registry.instance(id) else {
            throw APIError(.notFound, field: "service_id", message: "no service '\(id)' is registered")
        }
        return try JSONSupport.response(ConsulAgentService(instance, datacenter: api.node.datacenter))
    }

    func checks() async throws -> Response {
        let index = api.registry.index(for: .all)
        var result: [String: ConsulCheck] = [:]
        for instance in await ownInstances() {
            for check in instance.checks { result[check.checkID] = ConsulCheck(check, of: instance, index: index) }
        }
        return try JSONSupport.response(result)
    }

    func members() async throws -> Response {
        try JSONSupport.response(await api.members().map { ConsulMember($0, datacenter: api.node.datacenter) })
    }

    func agentSelf() async throws -> Response {
        let me = MemberView(name: api.node.name, address: api.node.address, port: api.node.clusterPort, state: .alive)
        let body = ConsulSelf(
            Config: .init(
                Datacenter: api.node.datacenter, NodeName: api.node.name, NodeID: api.node.name, Server: true,
                Revision: "roster", Version: api.node.version),
            Member: ConsulMember(me, datacenter: api.node.datacenter),
            Meta: ["roster_version": api.node.version])
        return try JSONSupport.response(body)
    }
}
