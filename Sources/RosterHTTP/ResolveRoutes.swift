import Foundation
import HTTPTypes
import Hummingbird
import RosterCore
import RosterNode

/// Resolution: pick one healthy instance of a service, and give leases back.
///
/// - `GET /registry/resolve/{service}?strategy=&region=&zone=` answers one healthy instance (the
///   instance JSON), taking a lease on it; `X-Roster-In-Flight` tells how many leases it now has.
///   `strategy` is one of `round_robin` (the default), `random`, `weighted`, `least_connections`,
///   `region_aware`; `region` and `zone` say where the caller is, for `region_aware`.
///   No healthy instance → 503 naming how many are registered and why they are not healthy.
/// - `POST /registry/release {"instance_id": ...}` gives a lease back: 200 with the leases left,
///   404 if the instance has none outstanding.
struct ResolveRoutes {
    let api: APIContext
    let state: ResolverState

    init(api: APIContext, state: ResolverState = ResolverState()) {
        self.api = api
        self.state = state
    }

    func add(to router: Router<BasicRequestContext>) {
        let group = router.group("registry")
        group.get("resolve/:service") { request, context in
            try await resolve(request, service: context.parameters.require("service"))
        }
        group.post("release") { request, _ in try await release(request) }
    }

    func resolve(_ request: Request, service: String) async throws -> Response {
        let query = request.uri.form
        let strategy: ResolutionStrategy
        if let name = query.get("strategy"), !name.isEmpty {
            guard let named = ResolutionStrategy(name: name) else {
                throw APIError(.badRequest, field: "strategy", message: "'\(name)' is not one of \(ResolutionStrategy.names)")
            }
            strategy = named
        } else {
            strategy = .default
        }
        let caller = ResolutionCaller(region: query.get("region"), zone: query.get("zone"))

        var healthy = await api.registry.service(service, filter: InstanceFilter(healthyOnly: true)).instances
        if healthy.isEmpty {
            // Explain why; and if an instance became healthy meanwhile, use it.
            let all = await api.registry.service(service).instances
            healthy = all.filter(\.isHealthy)
            if healthy.isEmpty {
                throw APIError(.serviceUnavailable, field: "service", message: ResolveRoutes.noHealthyReason(service, all))
            }
        }
        guard let resolution = state.resolve(service: service, among: healthy, strategy: strategy, caller: caller) else {
            throw APIError(.serviceUnavailable, field: "service", message: ResolveRoutes.noHealthyReason(service, []))
        }
        var headers = HTTPFields()
        headers[HTTPField.Name("X-Roster-In-Flight")!] = "\(resolution.inFlight)"
        return try JSONSupport.response(resolution.instance, headers: headers)
    }

    func release(_ request: Request) async throws -> Response {
        let body = try await JSONSupport.decode(ReleaseRequest.self, from: request, limit: api.limits.maxBodyBytes)
        let remaining = try state.release(body.instanceID)
        return try JSONSupport.response(ReleaseReply(instanceID: body.instanceID, inFlight: remaining))
    }

    /// `no healthy instance of 'x': 3 registered, 0 healthy (2 critical, 1 STOPPING)`: running
    /// instances with a critical check count as `critical`, the rest by their status.
    static func noHealthyReason(_ service: String, _ instances: [ServiceInstance]) -> String {
        var reasons: [String: Int] = [:]
        for instance in instances where !instance.isHealthy {
            let reason = instance.status == .running ? instance.checkStatus.rawValue : instance.status.rawValue
            reasons[reason, default: 0] += 1
        }
        var message = "no healthy instance of '\(service)': \(instances.count) registered, 0 healthy"
        if !reasons.isEmpty {
            let parts = reasons.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            message += " (" + parts.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + ")"
        }
        return message
    }
}

/// The resolver behind the routes, shared by every request and guarded by a lock.
final class ResolverState: @unchecked Sendable {
    private let lock = NSLock()
    private var resolver = Resolver()
    private var rng = SystemRandomNumberGenerator()

    func resolve(
        service: String, among candidates: [ServiceInstance], strategy: ResolutionStrategy, caller: ResolutionCaller
    ) -> Resolution? {
        lock.withLock { resolver.resolve(service: service, among: candidates, strategy: strategy, caller: caller, using: &rng) }
    }

    func release(_ instanceID: String) throws -> Int {
        try lock.withLock { try resolver.release(instanceID) }
    }
}

/// The body of `POST /registry/release`.
struct ReleaseRequest: Decodable {
    var instanceID: String
    enum CodingKeys: String, CodingKey { case instanceID = "instance_id" }
}

struct ReleaseReply: Encodable {
    var instanceID: String
    var inFlight: Int
    enum CodingKeys: String, CodingKey { case instanceID = "instance_id", inFlight = "in_flight" }
}
