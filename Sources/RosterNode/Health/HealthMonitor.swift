import Logging
import NIOCore
import RosterCore

/// Runs the HTTP and TCP checks this node owns. The registry says which checks those are and
/// takes the results; the pure `ProbeSchedule` says when each is due; this shell only starts
/// probes and carries their results back.
///
/// At most `maxConcurrentProbes` run at once, so 10,000 checks never open 10,000 connections
/// together; a check that comes due while the limit is reached waits for a free slot.
public actor HealthMonitor {
    /// Settings of the monitor itself; each check's interval and timeout are its own.
    public struct Settings: Sendable {
        public var maxConcurrentProbes = 256
        /// The longest the loop sleeps, which bounds how late it notices a changed check list.
        public var idleTick: Duration = .milliseconds(100)
        /// The shortest time between two re-reads of the check list while writes keep coming.
        public var minReconcileMillis: Int64 = 500
        public init() {}
    }

    let registry: Registry
    let settings: Settings
    let clock: NodeClock
    let logger: Logger
    let http: HTTPProber
    let tcp: TCPProber
    var schedule = ProbeSchedule()
    var rng: SplitMix64
    var inFlight = 0
    var seenVersions: (checks: UInt64, ownership: UInt64)?
    var lastReconcile: Int64?

    public init(
        registry: Registry, eventLoopGroup: any EventLoopGroup, settings: Settings = Settings(),
        clock: NodeClock = .system, logger: Logger
    ) {
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.logger = logger
        self.http = HTTPProber(eventLoopGroup: eventLoopGroup, nodeName: registry.nodeID)
        self.tcp = TCPProber(eventLoopGroup: eventLoopGroup)
        self.rng = SplitMix64(seed: UInt64(truncatingIfNeeded: clock.wallMillis()) ^ 0x6865_616c_7468)
    }

    /// Probes until the calling task is cancelled, then closes the HTTP client.
    public func run() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                await reconcileIfNeeded()
                for check in takeDue() {
                    group.addTask { await self.run(check) }
                }
                try? await Task.sleep(for: sleepTime())
            }
            group.cancelAll()
        }
        await http.shutdown()
    }

    /// How many checks are scheduled on this node, for tests and metrics.
    public var scheduledCount: Int { schedule.count }

    private func run(_ check: ActiveCheck) async {
        let started = clock.monotonicMillis()
        let result = await prober(for: check).probe(check)
        if !Task.isCancelled { await registry.recordProbe(check, result: result) }
        finished(check, started: started)
    }

    private func prober(for check: ActiveCheck) -> any Prober {
        check.kind == .tcp ? tcp : http
    }

    /// Re-reads the owned checks when ownership moved (at once) or checks changed (at most every
    /// `minReconcileMillis`, since under a stream of writes the list would otherwise be rebuilt
    /// on every wake-up).
    private func reconcileIfNeeded() async {
        let versions = (checks: registry.checkVersion.value, ownership: registry.ownershipVersion.value)
        let now = clock.monotonicMillis()
        let throttled = lastReconcile.map { now - $0 < settings.minReconcileMillis } ?? false
        let ownershipMoved = versions.ownership != seenVersions?.ownership
        guard ownershipMoved || (versions.checks != seenVersions?.checks && !throttled) else { return }
        seenVersions = versions
        lastReconcile = now
        let desired = await registry.ownedActiveChecks()
        let (added, removed) = schedule.reconcile(desired, now: clock.monotonicMillis(), using: &rng)
        if added > 0 || removed > 0 {
            logger.debug("health checks rescheduled", metadata: ["added": "\(added)", "removed": "\(removed)", "total": "\(schedule.count)"])
        }
    }

    private func takeDue() -> [ActiveCheck] {
        let due = schedule.takeDue(now: clock.monotonicMillis(), limit: settings.maxConcurrentProbes - inFlight)
        inFlight += due.count
        return due
    }

    private func finished(_ check: ActiveCheck, started: Int64) {
        inFlight -= 1
        schedule.finished(check, started: started, now: clock.monotonicMillis(), using: &rng)
    }

    private func sleepTime() -> Duration {
        let idle = settings.idleTick
        // Saturated: a slot frees when a probe finishes, which is not worth spinning for.
        if inFlight >= settings.maxConcurrentProbes { return min(idle, .milliseconds(10)) }
        guard let due = schedule.nextDue else { return idle }
        // Waking at most every 5 ms batches the probes that fall due close together.
        let wait = max(5, due - clock.monotonicMillis())
        return min(idle, .milliseconds(wait))
    }
}
