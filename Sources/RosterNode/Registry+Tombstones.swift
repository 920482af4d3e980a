import RosterCore

/// Tombstone collection.
///
/// A deregistration leaves a tombstone so that an older registration arriving late cannot bring
/// the instance back. Tombstones are kept for a grace period, timed on this node's monotonic
/// clock from when it first held the tombstone, then dropped. A dropped tombstone's hash is
/// remembered for one more grace period: peers collect at slightly different times, and one that
/// has not collected yet would otherwise hand the tombstone straight back through anti-entropy.
///
/// Known limit: a node cut off for longer than the grace period may still hold live records
/// whose tombstones the others have collected; wipe its data directory before it rejoins.
extension Registry {
    /// Collects tombstones held longer than `grace`. Returns how many were dropped.
    @discardableResult
    public func collectTombstones(grace: Duration) -> Int {
        let now = clock.monotonicMillis()
        let graceMillis = grace.components.seconds * 1000 + grace.components.attoseconds / 1_000_000_000_000_000
        forgotten = forgotten.filter { $0.value.until > now }
        let due = Set(tombstoneSeen.filter { now - $0.value >= graceMillis }.map(\.key))
        guard !due.isEmpty else { return 0 }
        for key in due {
            if let hash = state.recordHash(for: key) { forgotten[key] = (hash, now + graceMillis) }
            tombstoneSeen[key] = nil
            collectedThroughIndex = max(collectedThroughIndex, keyIndexes[key] ?? 0)
            keyIndexes[key] = nil
        }
        let collected = state.collectTombstones { due.contains($0.key) }
        // Peers compare their last sync with this horizon: it must survive a crash.
        saveMarks()
        metrics.tombstonesCollected.increment(by: collected)
        logger.debug("collected tombstones", metadata: ["count": "\(collected)"])
        return collected
    }

    /// Whether `record` is a tombstone this node collected recently, which must not come back.
    func wasCollected(_ record: Record) -> Bool {
        guard let entry = forgotten[record.key] else { return false }
        return entry.hash == StateDigest.hash(of: record)
    }

    /// Notes when this version of a key's tombstone arrived here (or that it stopped being one).
    /// Callers pass only records that changed the state, so a newer tombstone replacing an
    /// older one restarts the grace period: collecting it early would make its fresh stamp the
    /// collection horizon, and peers away for far less than the grace period would reset
    /// (found by the simulator, seed 125).
    func trackTombstone(_ record: Record, now: Int64) {
        if record.isTombstone {
            tombstoneSeen[record.key] = now
        } else {
            tombstoneSeen[record.key] = nil
        }
    }
}

extension Registry {
    /// The record held for `key`, tombstones included; for tests and diagnostics.
    public func recordForTesting(_ key: String) -> Record? { state.record(for: key) }
}
