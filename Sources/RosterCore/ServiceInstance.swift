/// Blue/green deployment colour.
public enum Deployment: String, Codable, Sendable, Hashable {
    case blue
    case green
}

/// One registered instance of a service: every field of SPEC §2a.
///
/// This is the replicated value. Lease renewals (the last heartbeat time, TTL deadlines) are
/// deliberately not part of it: they are renewed locally at the receiving node, so that a
/// heartbeat does not become a replicated write (DESIGN.md, "Heartbeats").
public struct ServiceInstance: Codable, Sendable, Hashable {
    public var serviceName: String
    public var instanceID: String
    public var host: String
    public var port: Int
    public var tags: [String]
    public var metadata: [String: String]
    public var version: String?
    public var capabilities: [String]
    public var dependencies: [String]
    public var endpoints: [String: String]
    public var deployment: Deployment?
    public var region: String?
    public var zone: String?
    public var weight: Int
    public var status: ServiceStatus
    public var registeredAt: Timestamp
    /// The time of the last heartbeat or registration this node knows of.
    public var lastHeartbeat: Timestamp
    /// The node that owns this instance's active health checks.
    public var node: String
    public var checks: [HealthCheck]

    public init(
        serviceName: String, instanceID: String, host: String, port: Int, tags: [String] = [],
        metadata: [String: String] = [:], version: String? = nil, capabilities: [String] = [],
        dependencies: [String] = [], endpoints: [String: String] = [:], deployment: Deployment? = nil,
        region: String? = nil, zone: String? = nil, weight: Int = 1, status: ServiceStatus = .running,
        registeredAt: Timestamp, lastHeartbeat: Timestamp? = nil, node: String, checks: [HealthCheck] = []
    ) {
        self.serviceName = serviceName
        self.instanceID = instanceID
        self.host = host
        self.port = port
        self.tags = tags
        self.metadata = metadata
        self.version = version
        self.capabilities = capabilities
        self.dependencies = dependencies
        self.endpoints = endpoints
        self.deployment = deployment
        self.region = region
        self.zone = zone
        self.weight = weight
        self.status = status
        self.registeredAt = registeredAt
        self.lastHeartbeat = lastHeartbeat ?? registeredAt
        self.node = node
        self.checks = checks
    }

    enum CodingKeys: String, CodingKey {
        case serviceName = "service_name", instanceID = "instance_id", host, port, tags, metadata
        case version, capabilities, dependencies, endpoints, deployment, region, zone, weight, status
        case registeredAt = "registered_at", lastHeartbeat = "last_heartbeat", node, checks
    }

    /// The worst status of the instance's checks.
    public var checkStatus: CheckStatus { checks.aggregateStatus }

    /// Healthy means serving and no critical check: what discovery and DNS answer with.
    public var isHealthy: Bool {
        status == .running && checkStatus != .critical
    }
}
