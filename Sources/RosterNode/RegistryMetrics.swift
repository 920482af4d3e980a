import Metrics
import RosterCore

/// The `roster_instances{service,status}` gauges, kept up to date incrementally so that a
/// scrape never has to walk the registry.
final class RegistryMetrics: @unchecked Sendable {
    private struct Key: Hashable {
        var service: String
        var status: String
    }

    /// Records from peers that changed this node's state.
    let deltasApplied = Counter(label: "roster_replication_deltas_applied_total")
    /// Concurrent versions of one instance decided by the fixed rule (HLC, delete, origin).
    let conflictsResolved = Counter(label: "roster_replication_conflicts_resolved_total")
    let tombstonesCollected = Counter(label: "roster_tombstones_collected_total")
    private var counts: [Key: Int] = [:]
    private var gauges: [Key: Gauge] = [:]

    func reset(from state: RegistryState) {
        for key in counts.keys { set(key, 0) }
        counts.removeAll()
        for record in state.records.values {
            if let instance = record.instance { update(from: nil, to: instance) }
        }
    }

    func update(from old: ServiceInstance?, to new: ServiceInstance?) {
        let before = old.map { Key(service: $0.serviceName, status: $0.status.rawValue) }
        let after = new.map { Key(service: $0.serviceName, status: $0.status.rawValue) }
        guard before != after else { return }
        if let before { adjust(before, by: -1) }
        if let after { adjust(after, by: 1) }
    }

    private func adjust(_ key: Key, by delta: Int) {
        let count = (counts[key] ?? 0) + delta
        counts[key] = count == 0 ? nil : count
        set(key, count)
    }

    private func set(_ key: Key, _ value: Int) {
        let gauge = gauges[key] ?? Gauge(label: "roster_instances", dimensions: [("service", key.service), ("status", key.status)])
        gauges[key] = gauge
        gauge.record(value)
    }
}
