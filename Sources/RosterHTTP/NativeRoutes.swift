import HTTPTypes
import Hummingbird
import HummingbirdCore
import RosterCore
import RosterNode

/// The native API of SPEC §2a.
struct NativeRoutes {
    let api: APIContext

    func add(to router: Router<BasicRequestContext>) {
        let group = router.group("registry")
        group.post("register") { request, _ in try await register(request) }
        group.post("heartbeat") { request, _ in try await heartbeat(request) }
        group.post("deregister") { request, _ in try await deregister(request) }
        group.post("status") { request, _ in try await status(request) }
        group.get("services") { request, _ in try await services(request) }
        group.get("services/:name") { request, context in try await service(request, name: context.parameters.require("name")) }
        group.get("instance/:id") { _, context in try await instance(context.parameters.require("id")) }
    }

    func register(_ request: Request) async throws -> Response {
        let body = try await JSONSupport.decode(NativeRegistration.self, from: request, limit: api.limits.maxBodyBytes)
        let instance = body.instance(node: api.node.name)
        try api.validator.validate(instance)
        let result = try await api.registry.register(instance, status: body.status)
        return try JSONSupport.response(result.instance, status: result.created ? .created : .ok)
    }

    func heartbeat(_ request: Request) async throws -> Response {
        let body = try await JSONSupport.decode(InstanceReference.self, from: request, limit: api.limits.maxBodyBytes)
        let result = try await api.registry.heartbeat(body.instanceID, service: body.serviceName)
        return try JSONSupport.response(result.instance)
    }

    func deregister(_ request: Request) async throws -> Response {
        let body = try await JSONSupport.decode(InstanceReference.self, from: request, limit: api.limits.maxBodyBytes)
        _ = try await api.registry.deregister(body.instanceID, service: body.serviceName)
        return try JSONSupport.response(["deregistered": body.instanceID])
    }

    func status(_ request: Request) async throws -> Response {
        let body = try await JSONSupport.decode(StatusChange.self, from: request, limit: api.limits.maxBodyBytes)
        let result = try await api.registry.setStatus(body.instanceID, service: body.serviceName, to: body.status)
        return try JSONSupport.response(result.instance)
    }

    func services(_ request: Request) async throws -> Response {
        let filter = try QueryFilter.parse(request.uri.form.map)
        let instances = await api.registry.query(filter)
        let grouped = Dictionary(grouping: instances, by: \.serviceName)
        let index = api.registry.index(for: .all)
        return try JSONSupport.response(ServicesListing(services: grouped), headers: ConsulHeaders.index(index))
    }

    func service(_ request: Request, name: String) async throws -> Response {
        let filter = try QueryFilter.parse(request.uri.form.map)
        let (instances, index) = await api.registry.service(name, filter: filter)
        return try JSONSupport.response(ServiceListing(service: name, instances: instances), headers: ConsulHeaders.index(index))
    }

    func instance(_ id: String) async throws -> Response {
        guard let instance = await api.registry.instance(id) else {
            throw APIError(.notFound, field: "instance_id", message: "no instance '\(id)' is registered")
        }
        return try JSONSupport.response(instance)
    }
}
