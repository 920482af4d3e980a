/// A node's name; unique within the cluster.
public typealias NodeID = String

/// A vector clock: one counter per node that wrote a key. It tells whether one version of a
/// record causally follows another or whether the two were written concurrently.
public struct VectorClock: Sendable, Hashable, CustomStringConvertible {
    /// Node → counter. Absent entries are zero, so zero entries are never stored.
    public private(set) var counters: [NodeID: UInt64]

    public init(_ counters: [NodeID: UInt64] = [:]) {
        self.counters = counters.filter { $0.value > 0 }
    }

    /// How two clocks relate.
    public enum Order: Sendable, Equatable {
        case before, after, equal, concurrent
    }

    public subscript(node: NodeID) -> UInt64 { counters[node] ?? 0 }

    /// Records one more event at `node`.
    public mutating func increment(at node: NodeID) {
        counters[node, default: 0] += 1
    }

    public func incremented(at node: NodeID) -> VectorClock {
        var copy = self
        copy.increment(at: node)
        return copy
    }

    /// Records one more event at `node`, with a counter of at least `floor`.
    public func incremented(at node: NodeID, atLeast floor: UInt64) -> VectorClock {
        var copy = self
        copy.counters[node] = max(self[node] + 1, floor)
        return copy
    }

    /// The least counter a node may issue in its `generation`-th life: every life's counters
    /// lie above anything an earlier life can have issued (up to 2²² writes to one key per life),
    /// so a counter issued, rumored and then lost in a crash before its fsync is never issued
    /// again to a different version after the restart (found by the simulator, seed 1008).
    /// Generations are wall-clock milliseconds (< 2⁴²), so the floor fits in 64 bits.
    public static func counterFloor(generation: UInt64) -> UInt64 {
        min(generation, (1 << 42) - 1) << 22
    }

    /// The least clock that is at or after both: the pointwise maximum.
    public func merged(with other: VectorClock) -> VectorClock {
        var result = self
        for (node, count) in other.counters where count > result[node] {
            result.counters[node] = count
        }
        return result
    }

    /// Compares `self` with `other`: `.before` means `other` causally follows `self`.
    public func compare(to other: VectorClock) -> Order {
        var less = false
        var greater = false
        for node in Set(counters.keys).union(other.counters.keys) {
            let a = self[node], b = other[node]
            if a < b { less = true } else if a > b { greater = true }
            if less && greater { return .concurrent }
        }
        switch (less, greater) {
        case (false, false): return .equal
        case (true, false): return .before
        case (false, true): return .after
        case (true, true): return .concurrent
        }
    }

    /// Nodes in a stable order, so encodings and descriptions are deterministic.
    public var sortedEntries: [(node: NodeID, counter: UInt64)] {
        counters.sorted { $0.key < $1.key }.map { (node: $0.key, counter: $0.value) }
    }

    public var description: String {
        "{" + sortedEntries.map { "\($0.node):\($0.counter)" }.joined(separator: ",") + "}"
    }
}
