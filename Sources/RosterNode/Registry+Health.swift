import Metrics
import RosterCore

/// Health checking on the registry's side: who owns which checks, the probe results of the
/// checks this node runs, and self-preservation. The probing itself is `HealthMonitor`'s.
extension Registry {
    /// Whether this node runs `instance`'s checks and judges its TTLs and deregistration.
    func owns(_ instance: ServiceInstance) -> Bool { view.owns(instance) }

    /// Whether this node has stopped expiring TTLs and removing critical instances, because it
    /// reaches fewer than half of the members it knows.
    public var isSelfPreserving: Bool { view.selfPreserving }

    /// Takes in a new view of the cluster from the membership shell: checks of instances whose
    /// owner changed are taken over (TTLs armed with a full period on this node's clock, the
    /// critical-since mark started afresh) or given up.
    public func updateView(_ newView: ClusterView) {
        guard newView != view else { return }
        let old = view
        view = newView
        reportPauses(from: old, to: newView)
        let now = clock.monotonicMillis()
        // Renewals sent while this node was starting, or while its expiry was paused, may never
        // have reached it: peers forward renewals only to members they see alive. Its TTLs
        // start afresh then, with `resumeGraceMillis` more for the peers to see it again. A node
        // alone has no peers to wait for, and a node's first life no old one they could mistake.
        let started = !old.settled && newView.settled && hadEarlierLife
        let resumed = (started || (old.pausesExpiry && !newView.pausesExpiry)) && newView.known > 1
        var gained: [NodeID: Int] = [:]
        var lost = 0
        for id in checkedInstances {
            guard let instance = state.instance(id) else { continue }
            let (was, isNow) = (old.owns(instance), newView.owns(instance))
            if isNow && (!was || resumed) {
                armTTLChecks(of: instance, now: resumed ? now + Self.resumeGraceMillis : now)
            }
            if was == isNow { continue }
            if isNow {
                timers.observe(instance, now: now)
                gained[instance.node, default: 0] += 1
            } else {
                forgetCheckState(of: id)
                lost += 1
            }
        }
        for (origin, count) in gained.sorted(by: { $0.key < $1.key }) {
            if origin == nodeID {
                logger.info("runs the checks of \(count) instance(s) registered through this node")
            } else {
                logger.notice("took over the checks of \(count) instance(s) registered through \(origin), which is \(newView.down.contains(origin) ? "down" : "gone")")
                healthMetrics.takeovers.increment(by: count)
            }
        }
        if lost > 0 { logger.notice("handed back the checks of \(lost) instance(s) to their live owners") }
        ownershipVersion.increment()
    }

    /// How much longer than a full TTL period a node gives the TTLs it resumes after starting
    /// or after a pause: peers learn that it is reachable again within a few gossip rounds,
    /// and only then forward it the renewals they hear. The failure detection bound (SPEC §4.5).
    static let resumeGraceMillis: Int64 = 5_000

    /// Logs and records entering and leaving self-preservation and self-doubt.
    private func reportPauses(from old: ClusterView, to newView: ClusterView) {
        if old.selfPreserving != newView.selfPreserving {
            healthMetrics.selfPreservation.record(newView.selfPreserving ? 1 : 0)
            if newView.selfPreserving {
                logger.warning(
                    "entering self-preservation: this node reaches \(newView.live.count) of the \(newView.known) members it knows; TTL expiry and removal of critical instances are paused until it reaches a majority again")
            } else {
                logger.notice(
                    "leaving self-preservation: this node reaches \(newView.live.count) of \(newView.known) members; TTL expiry and removal of critical instances resume")
            }
        }
        if old.pausesExpiry != newView.pausesExpiry {
            healthMetrics.expiryPaused.record(newView.pausesExpiry ? 1 : 0)
            if newView.doubting && !newView.selfPreserving {
                logger.notice(
                    "pausing TTL expiry and removal of critical instances: this node's probes fail without its peers even nacking, so it may be the one cut off")
            } else if !newView.pausesExpiry && old.doubting && !old.selfPreserving {
                logger.notice("resuming TTL expiry: this node's probes succeed again")
            }
        }
    }

    /// The HTTP and TCP checks this node runs now.
    public func ownedActiveChecks() -> [ActiveCheck] {
        var checks: [ActiveCheck] = []
        for id in checkedInstances {
            guard let instance = state.instance(id), owns(instance) else { continue }
            for check in instance.checks {
                if let active = ActiveCheck(instance: instance, check: check) { checks.append(active) }
            }
        }
        healthMetrics.checksOwned.record(checks.count)
        return checks
    }

    /// Applies the result of a probe this node ran. A status or output change is a write like
    /// any other: logged and replicated; nothing waits for its fsync, as no client is answered.
    public func recordProbe(_ check: ActiveCheck, result: ProbeResult) {
        healthMetrics.probes(result.status).increment()
        guard let instance = state.instance(check.instanceID), owns(instance) else { return }
        var progress = probeProgress[check.instanceID]?[check.checkID] ?? CheckProgress()
        defer { probeProgress[check.instanceID, default: [:]][check.checkID] = progress }
        guard let updated = state.prepareProbeResult(check, result: result, progress: &progress) else { return }
        let before = instance.checks.first { $0.checkID == check.checkID }?.status
        if before != result.status {
            logger.info(
                "check \(before?.rawValue ?? "?") → \(result.status.rawValue)",
                metadata: ["check": "\(check.checkID)", "instance": "\(check.instanceID)", "output": "\(result.output)"])
        }
        _ = commitLocal(key: updated.instanceID, serviceName: updated.serviceName, instance: updated)
    }

    /// Bookkeeping for instances with checks, called for every applied change.
    func noteChecks(of key: String, instance: ServiceInstance?, now: Int64) {
        guard let instance, !instance.checks.isEmpty else {
            if checkedInstances.remove(key) != nil {
                forgetCheckState(of: key)
                checkVersion.increment()
            }
            return
        }
        checkedInstances.insert(key)
        if owns(instance) { timers.observe(instance, now: now) } else { forgetCheckState(of: key) }
        checkVersion.increment()
    }

    func forgetCheckState(of instanceID: String) {
        timers.forget(instanceID: instanceID)
        probeProgress[instanceID] = nil
    }
}

/// Health checking's metrics.
final class HealthMetrics: Sendable {
    let selfPreservation = Gauge(label: "roster_self_preservation")
    /// 1 while TTL expiry waits: in self-preservation, or while the node doubts itself.
    let expiryPaused = Gauge(label: "roster_expiry_paused")
    let checksOwned = Gauge(label: "roster_checks_owned")
    let takeovers = Counter(label: "roster_check_takeovers_total")
    private let probeCounters = Dictionary(
        uniqueKeysWithValues: CheckStatus.allCases.map { ($0, Counter(label: "roster_check_probes_total", dimensions: [("status", $0.rawValue)])) })

    init() {
        selfPreservation.record(0)
        expiryPaused.record(0)
    }

    func probes(_ status: CheckStatus) -> Counter { probeCounters[status]! }
}
