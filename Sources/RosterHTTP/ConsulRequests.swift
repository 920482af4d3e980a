import Foundation
import RosterCore

/// `PUT /v1/agent/service/register`, decoded with Consul's case-insensitive keys.
struct ConsulServiceRegistration: Decodable {
    var name: String?
    var id: String?
    var tags: [String]
    var address: String?
    var port: Int?
    var meta: [String: String]
    var weights: ConsulWeights?
    var checks: [ConsulCheckDefinition]

    init(from decoder: any Decoder) throws {
        let c = try CaseInsensitiveContainer(decoder)
        name = try c.decode(String.self, "Name")
        id = try c.decode(String.self, "ID")
        tags = try c.decode([String].self, "Tags") ?? []
        address = try c.decode(String.self, "Address")
        port = try c.decode(Int.self, "Port")
        meta = try c.decode([String: String].self, "Meta") ?? [:]
        weights = try c.decode(ConsulWeights.self, "Weights")
        var checks = try c.decode([ConsulCheckDefinition].self, "Checks") ?? []
        if let single = try c.decode(ConsulCheckDefinition.self, "Check") { checks.insert(single, at: 0) }
        self.checks = checks
    }

    /// The instance this registration describes. Consul's ID defaults to the name, its address
    /// to the agent's, and a missing port is allowed by Consul, so it is stored as port 0 only
    /// if the client sent none.
    func instance(node: NodeInfo) throws(ValidationError) -> ServiceInstance {
        guard let name, !name.isEmpty else { throw ValidationError(field: "Name", message: "is required") }
        let serviceID = (id?.isEmpty == false ? id : nil) ?? name
        let definitions = checks.filter { !$0.isEmpty }
        let healthChecks = try definitions.enumerated().map { (i, definition) throws(ValidationError) in
            try definition.check(serviceID: serviceID, index: i, count: definitions.count)
        }
        return ServiceInstance(
            serviceName: name, instanceID: serviceID,
            host: (address?.isEmpty == false ? address : nil) ?? node.address, port: port ?? 0,
            tags: tags, metadata: meta, weight: weights?.passing ?? 1,
            registeredAt: Timestamp(millisecondsSinceEpoch: 0), node: node.name, checks: healthChecks)
    }
}

struct ConsulWeights: Codable, Sendable {
    var passing: Int
    var warning: Int

    init(passing: Int, warning: Int) {
        self.passing = passing
        self.warning = warning
    }

    init(from decoder: any Decoder) throws {
        let c = try CaseInsensitiveContainer(decoder)
        passing = try c.decode(Int.self, "Passing") ?? 1
        warning = try c.decode(Int.self, "Warning") ?? 1
    }

    enum CodingKeys: String, CodingKey { case passing = "Passing", warning = "Warning" }
}

/// One check in a Consul registration: HTTP, TCP or TTL.
struct ConsulCheckDefinition: Decodable {
    var checkID: String?
    var name: String?
    var ttl: String?
    var http: String?
    var method: String?
    var tcp: String?
    var interval: String?
    var timeout: String?
    var deregisterAfter: String?
    var notes: String?
    var status: String?
    var successBeforePassing: Int?
    var failuresBeforeCritical: Int?

    init(from decoder: any Decoder) throws {
        let c = try CaseInsensitiveContainer(decoder)
        checkID = try c.decode(String.self, "CheckID") ?? c.decode(String.self, "ID")
        name = try c.decode(String.self, "Name")
        ttl = try c.decode(String.self, "TTL")
        http = try c.decode(String.self, "HTTP")
        method = try c.decode(String.self, "Method")
        tcp = try c.decode(String.self, "TCP")
        interval = try c.decode(String.self, "Interval")
        timeout = try c.decode(String.self, "Timeout")
        deregisterAfter = try c.decode(String.self, "DeregisterCriticalServiceAfter")
        notes = try c.decode(String.self, "Notes")
        status = try c.decode(String.self, "Status")
        successBeforePassing = try c.decode(Int.self, "SuccessBeforePassing")
        failuresBeforeCritical = try c.decode(Int.self, "FailuresBeforeCritical")
    }

    /// py-consul sends an empty `Check: {}` for services without one.
    var isEmpty: Bool { ttl == nil && http == nil && tcp == nil }

    func check(serviceID: String, index: Int, count: Int) throws(ValidationError) -> HealthCheck {
        let field = count == 1 ? "Check" : "Checks[\(index)]"
        func duration(_ text: String?, _ name: String) throws(ValidationError) -> GoDuration? {
            guard let text, !text.isEmpty else { return nil }
            guard let value = GoDuration(parsing: text) else {
                throw ValidationError(field: "\(field).\(name)", message: "'\(text)' is not a duration such as \"10s\"")
            }
            return value
        }
        let kind: CheckKind = ttl != nil ? .ttl : http != nil ? .http : .tcp
        var initial = CheckStatus.critical
        if let status, !status.isEmpty {
            guard let parsed = CheckStatus(rawValue: status.lowercased()) else {
                throw ValidationError(field: "\(field).Status", message: "'\(status)' is not passing, warning or critical")
            }
            initial = parsed
        }
        let id = checkID.flatMap { $0.isEmpty ? nil : $0 } ?? HealthCheck.consulID(serviceID: serviceID, index: index, of: count)
        return HealthCheck(
            checkID: id, name: name ?? "Service '\(serviceID)' check", kind: kind, target: http ?? tcp,
            method: method, interval: try duration(interval, "Interval"), timeout: try duration(timeout, "Timeout"),
            ttl: try duration(ttl, "TTL"), deregisterCriticalServiceAfter: try duration(deregisterAfter, "DeregisterCriticalServiceAfter"),
            successBeforePassing: successBeforePassing ?? 0, failuresBeforeCritical: failuresBeforeCritical ?? 0,
            status: initial, notes: notes ?? "")
    }
}

/// `PUT /v1/agent/check/update/:id`.
struct ConsulCheckUpdate: Decodable {
    var status: String?
    var output: String?

    init(from decoder: any Decoder) throws {
        let c = try CaseInsensitiveContainer(decoder)
        status = try c.decode(String.self, "Status")
        output = try c.decode(String.self, "Output")
    }
}
