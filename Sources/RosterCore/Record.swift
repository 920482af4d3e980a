/// One version of one registry key: the replicated unit.
///
/// A record whose `instance` is nil is a tombstone: the key was deregistered. Tombstones are kept
/// (and replicated) so that an older registration arriving late cannot bring the instance back.
public struct Record: Sendable, Hashable {
    /// The instance id: unique across the cluster.
    public var key: String
    /// The service the key belongs to; kept on tombstones too, so indexes and per-service change
    /// indexes can be updated for a key this node never saw alive.
    public var serviceName: String
    public var instance: ServiceInstance?
    public var clock: VectorClock
    public var stamp: HLCTimestamp
    /// The node that made this version.
    public var origin: NodeID

    public init(
        key: String, serviceName: String, instance: ServiceInstance?, clock: VectorClock,
        stamp: HLCTimestamp, origin: NodeID
    ) {
        self.key = key
        self.serviceName = serviceName
        self.instance = instance
        self.clock = clock
        self.stamp = stamp
        self.origin = origin
    }

    public var isTombstone: Bool { instance == nil }
}

// MARK: - Merge

extension Record {
    /// Merges two versions of the same key into the version every node will agree on.
    ///
    /// If one clock dominates, that version wins. Concurrent versions are decided by a fixed rule:
    /// the higher HLC stamp wins; on a tie a delete beats a write; then the larger origin wins.
    /// The result carries the join of both clocks, so that it dominates everything it has seen.
    ///
    /// Why the laws hold: a node stamps a write only after observing the version it supersedes,
    /// so a dominating clock always has the larger stamp. The winner is therefore the maximum
    /// under one total order, and the clock is a join; both are commutative, associative and
    /// idempotent, and so is their product. The property tests check this over random histories.
    public static func merge(_ a: Record, _ b: Record) -> Record {
        precondition(a.key == b.key, "merging records of different keys")
        var winner: Record
        switch a.clock.compare(to: b.clock) {
        case .after: winner = a
        case .before: winner = b
        case .equal, .concurrent: winner = a.beatsConcurrent(b) ? a : b
        }
        winner.clock = a.clock.merged(with: b.clock)
        return winner
    }

    /// The fixed rule for concurrent versions; a strict total order over distinct versions.
    public func beatsConcurrent(_ other: Record) -> Bool {
        if stamp != other.stamp { return stamp > other.stamp }
        if isTombstone != other.isTombstone { return isTombstone }
        if origin != other.origin { return origin > other.origin }
        // Same stamp and origin: the same write seen twice, or a state no honest node produces.
        // Compare encodings so the choice is still deterministic.
        return RecordCodec.encode(self).lexicographicallyPrecedes(RecordCodec.encode(other)) == false
    }

    /// Whether merging `incoming` into `self` changes anything.
    public func isSuperseded(by incoming: Record) -> Bool {
        Record.merge(self, incoming) != self
    }
}
