/// Local timers for the checks this node owns: TTL deadlines and how long checks have been
/// critical. Times are this node's monotonic milliseconds; they are never replicated or
/// compared with another node's clock (SPEC §4.7).
public struct CheckTimers: Sendable {
    public struct CheckRef: Hashable, Sendable {
        public var instanceID: String
        public var checkID: String
        public init(instanceID: String, checkID: String) {
            self.instanceID = instanceID
            self.checkID = checkID
        }
    }

    /// instance id → check id → deadline; by instance, so forgetting an instance is O(1).
    private var ttlDeadlines: [String: [String: Int64]] = [:]
    private var criticalSince: [String: Int64] = [:]

    public init() {}

    /// Arms or re-arms a TTL check: it expires `ttl` from `now` unless renewed.
    public mutating func renew(_ ref: CheckRef, ttl: GoDuration, now: Int64) {
        ttlDeadlines[ref.instanceID, default: [:]][ref.checkID] = now + ttl.milliseconds
    }

    /// Checks whose TTL has run out. Each is reported once, then disarmed until renewed.
    public mutating func expiredTTLs(now: Int64) -> [CheckRef] {
        var expired: [CheckRef] = []
        for (instanceID, checks) in ttlDeadlines {
            for (checkID, deadline) in checks where deadline <= now {
                expired.append(CheckRef(instanceID: instanceID, checkID: checkID))
            }
        }
        for ref in expired {
            ttlDeadlines[ref.instanceID]?[ref.checkID] = nil
            if ttlDeadlines[ref.instanceID]?.isEmpty == true { ttlDeadlines[ref.instanceID] = nil }
        }
        return expired.sorted { ($0.instanceID, $0.checkID) < ($1.instanceID, $1.checkID) }
    }

    /// Tracks when an instance went critical, for `DeregisterCriticalServiceAfter`.
    public mutating func observe(_ instance: ServiceInstance, now: Int64) {
        if instance.checkStatus == .critical {
            if criticalSince[instance.instanceID] == nil { criticalSince[instance.instanceID] = now }
        } else {
            criticalSince[instance.instanceID] = nil
        }
    }

    /// Whether `instance` has been critical longer than its shortest deregister-after window.
    public func shouldDeregister(_ instance: ServiceInstance, now: Int64) -> Bool {
        guard let since = criticalSince[instance.instanceID] else { return false }
        let windows = instance.checks.filter { $0.status == .critical }.compactMap(\.deregisterCriticalServiceAfter)
        guard let window = windows.min() else { return false }
        return now - since >= window.milliseconds
    }

    /// Instances that have a critical-since mark, for the sweeper to examine.
    public var criticalInstances: [String] { Array(criticalSince.keys) }

    /// Forgets everything about an instance that is gone.
    public mutating func forget(instanceID: String) {
        criticalSince[instanceID] = nil
        ttlDeadlines[instanceID] = nil
    }
}
