import Foundation
import RosterCore

/// Background upkeep: TTL expiry, deregistration of long-critical instances, snapshots.
extension Registry {
    /// Expires TTL checks whose time ran out and removes instances critical for longer than
    /// their `DeregisterCriticalServiceAfter`. Only checks this node owns are judged here, and
    /// none while it is in self-preservation or doubts itself (`ClusterView.pausesExpiry`):
    /// then the deadlines wait, and TTLs start afresh when the pause ends.
    public func sweep() {
        guard !view.pausesExpiry else { return }
        let now = clock.monotonicMillis()
        for ref in timers.expiredTTLs(now: now) {
            guard let instance = state.instance(ref.instanceID), owns(instance),
                let expired = state.prepareTTLExpiry(instanceID: ref.instanceID, checkID: ref.checkID)
            else { continue }
            logger.info("TTL check expired", metadata: ["check": "\(ref.checkID)", "instance": "\(ref.instanceID)"])
            _ = commitLocal(key: expired.instanceID, serviceName: expired.serviceName, instance: expired)
        }
        for id in timers.criticalInstances {
            guard let instance = state.instance(id), owns(instance), timers.shouldDeregister(instance, now: now)
            else { continue }
            logger.info(
                "deregistering an instance critical for longer than DeregisterCriticalServiceAfter",
                metadata: ["instance": "\(id)", "service": "\(instance.serviceName)"])
            _ = commitLocal(key: id, serviceName: instance.serviceName, instance: nil)
        }
    }

    /// Takes a snapshot when the policy says the log has grown enough (or when `force`d), then
    /// drops the log segments it covers. The file work runs off the actor.
    public func snapshotIfNeeded(force: Bool = false) async {
        let due = snapshotPolicy.isDue(logBytes: wal.bytesSinceRotation, lastSnapshotBytes: lastSnapshotBytes)
        guard !snapshotRunning, force || due else { return }
        snapshotRunning = true
        defer { snapshotRunning = false }
        // Rotate first, then copy the state without suspending in between: everything in the
        // older segments is then in the copy.
        let nextSegment = wal.rotate()
        let (maxIndex, serviceIndexes) = indexes.snapshot
        let snapshot = Snapshot(
            nextSegment: nextSegment, maxIndex: maxIndex, serviceIndexes: serviceIndexes,
            entries: state.records.values.map { LogEntry(index: keyIndexes[$0.key] ?? 0, record: $0) })
        let dataDir = self.dataDir
        let wal = self.wal
        let started = clock.monotonicMillis()
        do {
            lastSnapshotBytes = try await Task.detached {
                let bytes = try snapshot.write(to: dataDir)
                try wal.removeSegments(before: nextSegment)
                return bytes
            }.value
            logger.info(
                "wrote snapshot",
                metadata: [
                    "records": "\(snapshot.entries.count)", "bytes": "\(lastSnapshotBytes)",
                    "ms": "\(clock.monotonicMillis() - started)",
                ])
        } catch {
            logger.error("snapshot failed; the log is kept and the next attempt will retry: \(error)")
        }
    }

    /// Flushes the log and writes a final snapshot, for a graceful shutdown.
    public func close() async {
        await snapshotIfNeeded(force: true)
        wal.close()
    }
}
