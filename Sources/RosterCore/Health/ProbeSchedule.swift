import HeapModule

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
///
/// Due times sit in a min-heap, so taking what is due costs O(log n) per check, not a scan of
/// every check: at 10,000 checks the monitor wakes hundreds of times a second. Removed and
/// rescheduled checks leave stale heap entries behind, skipped when popped and swept out when
/// they outnumber the live ones.
public struct ProbeSchedule: Sendable {
    struct Entry: Sendable {
        var check: ActiveCheck
        var due: Int64
        var running: Bool
        /// Which heap entry is current: older ones for this check are stale.
        var ticket: UInt64
    }

    struct Due: Comparable, Sendable {
        var due: Int64
        var ticket: UInt64
        var ref: CheckTimers.CheckRef
        static func < (a: Due, b: Due) -> Bool { (a.due, a.ticket) < (b.due, b.ticket) }
        static func == (a: Due, b: Due) -> Bool { a.due == b.due && a.ticket == b.ticket }
    }

    private var entries: [CheckTimers.CheckRef: Entry] = [:]
    private var heap = Heap<Due>()
    private var nextTicket: UInt64 = 0

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
            schedule(check, at: now + Int64.random(in: 0..<max(1, check.intervalMillis), using: &rng))
        }
        if heap.count > 2 * entries.count + 64 { compact() }
        return (added, removed)
    }

    /// Checks that are due, earliest first, at most `limit`; each is marked running until
    /// `finished` is called for it.
    public mutating func takeDue(now: Int64, limit: Int) -> [ActiveCheck] {
        var due: [ActiveCheck] = []
        while due.count < limit, let top = heap.min, top.due <= now {
            _ = heap.popMin()
            guard var entry = entries[top.ref], entry.ticket == top.ticket, !entry.running else { continue }
            entry.running = true
            entries[top.ref] = entry
            due.append(entry.check)
        }
        return due
    }

    /// Records that a run of `check` that started at `started` is over, and schedules the next.
    /// A check removed or redefined meanwhile is left as reconcile made it.
    public mutating func finished(_ check: ActiveCheck, started: Int64, now: Int64, using rng: inout some RandomNumberGenerator) {
        guard let entry = entries[check.ref], entry.running, entry.check == check else { return }
        let spread = check.intervalMillis / 20
        let jitter = Int64.random(in: -spread...spread, using: &rng)
        schedule(check, at: max(now, started + check.intervalMillis + jitter))
    }

    /// When the earliest idle check is due, if any. May be earlier than the truth when the
    /// earliest heap entry is stale, which costs the caller one early wake-up at most.
    public var nextDue: Int64? { heap.min?.due }

    private mutating func schedule(_ check: ActiveCheck, at due: Int64) {
        nextTicket += 1
        entries[check.ref] = Entry(check: check, due: due, running: false, ticket: nextTicket)
        heap.insert(Due(due: due, ticket: nextTicket, ref: check.ref))
    }

    private mutating func compact() {
        heap = Heap(entries.filter { !$0.value.running }.map { Due(due: $0.value.due, ticket: $0.value.ticket, ref: $0.key) })
    }
}
