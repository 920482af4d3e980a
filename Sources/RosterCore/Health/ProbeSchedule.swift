/// One HTTP or TCP check to probe: everything a prober needs, and the identity that tells a
/// result for an old definition from one for the current one.
public struct ActiveCheck: Hashable, Sendable {
    public var instanceID: String
    public var checkID: String
    public var kind: CheckKind
    public var target: String
    public var method: String
    public var intervalMillis: Int64
    public var timeoutMillis: Int64

    public init(
        instanceID: String, checkID: String, kind: CheckKind, target: String, method: String = "GET",
        intervalMillis: Int64, timeoutMillis: Int64
    ) {
        self.instanceID = instanceID
        self.checkID = checkID
        self.kind = kind
        self.target = target
        self.method = method
        self.intervalMillis = intervalMillis
        self.timeoutMillis = timeoutMillis
    }

    /// The probe of `check`, or nil for a TTL check (nothing to probe) or one without target.
    public init?(instance: ServiceInstance, check: HealthCheck) {
        guard check.kind != .ttl, let target = check.target, let interval = check.interval else { return nil }
        self.init(
            instanceID: instance.instanceID, checkID: check.checkID, kind: check.kind, target: target,
            method: check.method ?? "GET", intervalMillis: interval.milliseconds, timeoutMillis: check.effectiveTimeoutMillis)
    }

    public var ref: CheckTimers.CheckRef { .init(instanceID: instanceID, checkID: checkID) }
}

/// When each check this node runs is next due. Pure: the monitor shell feeds it the checks it
/// owns, the time and randomness, and runs what comes due.
///
/// A check joining the schedule (newly registered, or taken over from a failed node) first runs
/// at a random point within its interval, so that 10,000 checks arriving together, as at a
/// takeover or a restart, spread over the interval instead of firing at once. After that each
/// run is one interval after the previous one started, give or take 5 %, so checks that
/// share an interval drift apart rather than staying in lockstep. A check is never run twice
/// at the same time: its next run is scheduled only once the current one has finished.
public struct ProbeSchedule: Sendable {
    struct Entry: Sendable {
        var check: ActiveCheck
        var due: Int64
        var running: Bool
    }

    private var entries: [CheckTimers.CheckRef: Entry] = [:]

    public init() {}

    public var count: Int { entries.count }
    public var runningCount: Int { entries.values.filter(\.running).count }

    /// Makes the schedule hold exactly `desired`. New checks and changed definitions are due at
    /// a random point within their interval; unchanged ones keep their place.
    /// Returns the checks added and removed.
    @discardableResult
    public mutating func reconcile(
        _ desired: [ActiveCheck], now: Int64, using rng: inout some RandomNumberGenerator
    ) -> (added: Int, removed: Int) {
        var wanted: [CheckTimers.CheckRef: ActiveCheck] = [:]
        for check in desired { wanted[check.ref] = check }
        let before = entries.count
        entries = entries.filter { wanted[$0.key] != nil }
        let removed = before - entries.count
        var added = 0
        for (ref, check) in wanted {
            if let existing = entries[ref], existing.check == check { continue }
            added += 1
            entries[ref] = Entry(check: check, due: now + Int64.random(in: 0..<max(1, check.intervalMillis), using: &rng), running: false)
        }
        return (added, removed)
    }

    /// Checks that are due, oldest first, at most `limit`; each is marked running until
    /// `finished` is called for it.
    public mutating func takeDue(now: Int64, limit: Int) -> [ActiveCheck] {
        guard limit > 0 else { return [] }
        let due = entries.values.filter { !$0.running && $0.due <= now }
            .sorted { ($0.due, $0.check.instanceID, $0.check.checkID) < ($1.due, $1.check.instanceID, $1.check.checkID) }
            .prefix(limit)
        for entry in due { entries[entry.check.ref]?.running = true }
        return due.map(\.check)
    }

    /// Records that a run of `check` that started at `started` is over, and schedules the next.
    /// A check removed or redefined meanwhile is left as reconcile made it.
    public mutating func finished(_ check: ActiveCheck, started: Int64, now: Int64, using rng: inout some RandomNumberGenerator) {
        guard var entry = entries[check.ref], entry.running, entry.check == check else { return }
        let spread = check.intervalMillis / 20
        let jitter = Int64.random(in: -spread...spread, using: &rng)
        entry.due = max(now, started + check.intervalMillis + jitter)
        entry.running = false
        entries[check.ref] = entry
    }

    /// When the earliest idle check is due, if any.
    public var nextDue: Int64? {
        entries.values.lazy.filter { !$0.running }.map(\.due).min()
    }
}
