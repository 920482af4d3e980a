/// The health of one check, in Consul's vocabulary.
public enum CheckStatus: String, Codable, Sendable, Hashable, CaseIterable {
    case passing
    case warning
    case critical

    /// Worse statuses sort later, so the aggregate of several checks is their maximum.
    var severity: Int {
        switch self {
        case .passing: 0
        case .warning: 1
        case .critical: 2
        }
    }
}

/// How a check learns its status.
public enum CheckKind: String, Codable, Sendable, Hashable {
    /// Renewed from outside by pass/warn/fail calls or heartbeats; critical when not renewed.
    case ttl
    /// Probed with an HTTP request: 2xx passing, 429 warning, anything else critical.
    case http
    /// Probed by opening a TCP connection.
    case tcp
}

/// A check's definition together with its current state. Both replicate with the instance,
/// so any node can answer health queries and take the check over when its owner dies.
public struct HealthCheck: Codable, Sendable, Hashable {
    public var checkID: String
    public var name: String
    public var kind: CheckKind
    /// The URL of an HTTP check or the `host:port` of a TCP check.
    public var target: String?
    public var method: String?
    public var interval: GoDuration?
    public var timeout: GoDuration?
    public var ttl: GoDuration?
    public var deregisterCriticalServiceAfter: GoDuration?
    public var successBeforePassing: Int
    public var failuresBeforeCritical: Int
    public var status: CheckStatus
    public var output: String
    public var notes: String

    public init(
        checkID: String, name: String, kind: CheckKind, target: String? = nil, method: String? = nil,
        interval: GoDuration? = nil, timeout: GoDuration? = nil, ttl: GoDuration? = nil,
        deregisterCriticalServiceAfter: GoDuration? = nil, successBeforePassing: Int = 0,
        failuresBeforeCritical: Int = 0, status: CheckStatus = .critical, output: String = "",
        notes: String = ""
    ) {
        self.checkID = checkID
        self.name = name
        self.kind = kind
        self.target = target
        self.method = method
        self.interval = interval
        self.timeout = timeout
        self.ttl = ttl
        self.deregisterCriticalServiceAfter = deregisterCriticalServiceAfter
        self.successBeforePassing = successBeforePassing
        self.failuresBeforeCritical = failuresBeforeCritical
        self.status = status
        self.output = output
        self.notes = notes
    }

    enum CodingKeys: String, CodingKey {
        case checkID = "check_id", name, kind, target, method, interval, timeout, ttl
        case deregisterCriticalServiceAfter = "deregister_critical_service_after"
        case successBeforePassing = "success_before_passing"
        case failuresBeforeCritical = "failures_before_critical"
        case status, output, notes
    }

    /// Whether two checks have the same definition, ignoring their current state. A
    /// re-registration with an unchanged definition keeps the check's state, as Consul does.
    public func sameDefinition(as other: HealthCheck) -> Bool {
        var a = self
        var b = other
        a.status = .passing
        b.status = .passing
        a.output = ""
        b.output = ""
        return a == b
    }

    /// Consul's check IDs: `service:<id>` for a single check, `service:<id>:<n>` for several.
    public static func consulID(serviceID: String, index: Int, of count: Int) -> String {
        count == 1 ? "service:\(serviceID)" : "service:\(serviceID):\(index + 1)"
    }
}

extension Collection where Element == HealthCheck {
    /// The worst status among the checks; passing when there are none.
    public var aggregateStatus: CheckStatus {
        self.map(\.status).max { $0.severity < $1.severity } ?? .passing
    }
}
