import Foundation
import RosterCore

/// The full reset of a node that was away longer than the tombstone grace period.
///
/// While a node is away, its peers may collect tombstones of instances it still holds alive;
/// when it returns it would hand those back, and the deleted instances would live again. Every
/// digest carries the sender's collection horizon (the highest stamp among tombstones it has
/// collected). A node whose last sync predates a peer's horizon drops every record stamped at or
/// before it and lets anti-entropy refill it: what the cluster still holds comes back, what it
/// deleted and forgot does not. Writes this node took in at or before that horizon that never
/// reached a peer are lost: that is the cost of being cut off for longer than the grace period.
/// A whole-cluster outage triggers nothing, since nobody collects while everyone is down.
extension Registry {
    /// Checks a peer's collection horizon against this node's last sync; resets if stale.
    public func resetIfStale(peerHorizon: HLCTimestamp, peer: NodeID) async {
        guard peerHorizon > lastSync else { return }
        let dropped = state.drop { $0.stamp <= peerHorizon }
        lastSync = peerHorizon
        saveMarks()
        guard !dropped.isEmpty else { return }
        for record in dropped { noteDropped(record) }
        logger.warning(
            "this node was away longer than the tombstone grace period: dropped \(dropped.count) records older than peer \(peer)'s collection horizon; anti-entropy refills what the cluster still holds",
            metadata: ["horizon": "\(peerHorizon)"])
        // The log still holds the dropped records; a snapshot now keeps a restart from replaying them.
        await snapshotIfNeeded(force: true)
    }

    /// Records that this node is in contact with a peer whose horizon it has checked. Any digest
    /// counts, equal or not: in a busy cluster roots may rarely match, yet nobody is away.
    public func noteSynced() {
        lastSync = max(lastSync, hlc.last)
        let now = clock.monotonicMillis()
        if now - lastMarksSave >= 10_000 { saveMarks() }
    }

    func noteDropped(_ record: Record) {
        let index = indexes.bump([record.serviceName])
        keyIndexes[record.key] = nil
        tombstoneSeen[record.key] = nil
        guard let instance = record.instance else { return }
        timers.forget(instanceID: record.key)
        heartbeats[record.key] = nil
        metrics.update(from: instance, to: nil)
        feed.publish(
            ChangeEvent(index: index, kind: .deregistered, serviceName: record.serviceName, instanceID: record.key, instance: nil))
        wake(.service(record.serviceName))
        wake(.all)
    }

    // MARK: - Persisted marks

    /// `DATA/replication-marks`: the collection horizon and the last sync, as `physical.logical`.
    var marksPath: String { "\(dataDir)/replication-marks" }

    func saveMarks() {
        lastMarksSave = clock.monotonicMillis()
        let h = state.collectionHorizon
        let text = "\(h.physicalMillis).\(h.logical) \(lastSync.physicalMillis).\(lastSync.logical)\n"
        do {
            let temporary = marksPath + ".tmp"
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            try FileIO.rename(temporary, marksPath)
        } catch {
            logger.error("cannot save replication marks to \(marksPath): \(error)")
        }
    }

    func loadMarks() {
        guard let text = try? String(contentsOfFile: marksPath, encoding: .utf8) else { return }
        let stamps = text.split(whereSeparator: \.isWhitespace).map { part -> HLCTimestamp? in
            let pieces = part.split(separator: ".")
            guard pieces.count == 2, let physical = Int64(pieces[0]), let logical = UInt32(pieces[1]) else { return nil }
            return HLCTimestamp(physicalMillis: physical, logical: logical)
        }
        guard stamps.count == 2, let horizon = stamps[0], let synced = stamps[1] else {
            logger.warning("ignoring unreadable replication marks in \(marksPath)")
            return
        }
        state.collectionHorizon = max(state.collectionHorizon, horizon)
        lastSync = max(lastSync, synced)
    }
}
