import Foundation
import RosterCore

/// The body of `POST /registry/register`.
struct NativeRegistration: Decodable {
    var serviceName: String
    var instanceID: String
    var host: String
    var port: Int
    var tags: [String]?
    var metadata: [String: String]?
    var version: String?
    var capabilities: [String]?
    var dependencies: [String]?
    var endpoints: [String: String]?
    var deployment: Deployment?
    var region: String?
    var zone: String?
    var weight: Int?
    var status: ServiceStatus?
    var checks: [NativeCheck]?
    /// Shorthand for one TTL check renewed by heartbeats.
    var ttl: GoDuration?

    enum CodingKeys: String, CodingKey {
        case serviceName = "service_name", instanceID = "instance_id", host, port, tags, metadata, version
        case capabilities, dependencies, endpoints, deployment, region, zone, weight, status, checks, ttl
    }

    func instance(node: String) -> ServiceInstance {
        var checks = (checks ?? []).map(\.check)
        if let ttl { checks.append(HealthCheck(checkID: "", name: "heartbeat TTL", kind: .ttl, ttl: ttl)) }
        for i in checks.indices where checks[i].checkID.isEmpty {
            checks[i].checkID = HealthCheck.consulID(serviceID: instanceID, index: i, of: checks.count)
        }
        return ServiceInstance(
            serviceName: serviceName, instanceID: instanceID, host: host, port: port, tags: tags ?? [],
            metadata: metadata ?? [:], version: version, capabilities: capabilities ?? [],
            dependencies: dependencies ?? [], endpoints: endpoints ?? [:], deployment: deployment, region: region,
            zone: zone, weight: weight ?? 1, status: status ?? .running, registeredAt: Timestamp(millisecondsSinceEpoch: 0),
            node: node, checks: checks)
    }
}

/// A check in the native API.
struct NativeCheck: Decodable {
    var checkID: String?
    var name: String?
    var kind: CheckKind
    var target: String?
    var method: String?
    var interval: GoDuration?
    var timeout: GoDuration?
    var ttl: GoDuration?
    var deregisterCriticalServiceAfter: GoDuration?
    var successBeforePassing: Int?
    var failuresBeforeCritical: Int?

    enum CodingKeys: String, CodingKey {
        case checkID = "check_id", name, kind, target, method, interval, timeout, ttl
        case deregisterCriticalServiceAfter = "deregister_critical_service_after"
        case successBeforePassing = "success_before_passing", failuresBeforeCritical = "failures_before_critical"
    }

    var check: HealthCheck {
        HealthCheck(
            checkID: checkID ?? "", name: name ?? "\(kind.rawValue) check", kind: kind, target: target, method: method,
            interval: interval, timeout: timeout, ttl: ttl, deregisterCriticalServiceAfter: deregisterCriticalServiceAfter,
            successBeforePassing: successBeforePassing ?? 0, failuresBeforeCritical: failuresBeforeCritical ?? 0)
    }
}

/// The body of heartbeat and deregister calls.
struct InstanceReference: Decodable {
    var serviceName: String
    var instanceID: String
    enum CodingKeys: String, CodingKey { case serviceName = "service_name", instanceID = "instance_id" }
}

/// The body of `POST /registry/status`.
struct StatusChange: Decodable {
    var serviceName: String
    var instanceID: String
    var status: ServiceStatus
    enum CodingKeys: String, CodingKey { case serviceName = "service_name", instanceID = "instance_id", status }
}

struct ServicesListing: Encodable {
    var services: [String: [ServiceInstance]]
}

struct ServiceListing: Encodable {
    var service: String
    var instances: [ServiceInstance]
}

/// Builds an index-backed filter from `?tag=&capability=&version=&deployment=&region=&zone=&status=&healthy=`.
enum QueryFilter {
    static let fields: [(String, IndexedField)] = [
        ("tag", .tag), ("capability", .capability), ("version", .version), ("deployment", .deployment),
        ("region", .region), ("zone", .zone), ("status", .status),
    ]

    static func parse(_ query: [String: String]) throws -> InstanceFilter {
        var filter = InstanceFilter()
        /// Adds a predicate, AND-ed with any already there. Index-backed `equals` filters narrow
        /// the candidates first; predicates only run on what they leave.
        func require(_ next: @escaping @Sendable (ServiceInstance) -> Bool) {
            if let previous = filter.predicate {
                filter.predicate = { previous($0) && next($0) }
            } else {
                filter.predicate = next
            }
        }
        for (name, field) in fields {
            guard let value = query[name], !value.isEmpty else { continue }
            if field == .version, VersionRange.isRangeExpression(value) {
                // `>=1.2 <2`, `^1.2.3`, ...: no index answers a range, so it is a predicate. An exact
                // `version=1.2.3` stays an indexed string match below.
                let range: VersionRange
                do {
                    range = try VersionRange(value)
                } catch {
                    throw APIError(.badRequest, field: "version", message: "\(error.message)")
                }
                require { range.contains(versionString: $0.version) }
            } else if field == .status {
                guard let status = ServiceStatus(rawValue: value.uppercased()) else {
                    throw APIError(.badRequest, field: "status", message: "'\(value)' is not one of \(ServiceStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                filter.equals.append((field, status.rawValue))
            } else if field == .deployment {
                guard let deployment = Deployment(rawValue: value.lowercased()) else {
                    throw APIError(.badRequest, field: "deployment", message: "'\(value)' is not blue or green")
                }
                filter.equals.append((field, deployment.rawValue))
            } else {
                filter.equals.append((field, value))
            }
        }
        if let healthy = query["healthy"] {
            guard let flag = Bool(healthy.lowercased()) else {
                throw APIError(.badRequest, field: "healthy", message: "'\(healthy)' is not true or false")
            }
            filter.healthyOnly = flag
            if !flag { require { !$0.isHealthy } }
        }
        return filter
    }
}
