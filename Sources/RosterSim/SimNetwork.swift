/// The simulated network between nodes: per-message delay (a wide range reorders), loss,
/// duplication, and cuts. A cut is directed, so one-way (asymmetric) partitions are expressible;
/// cuts are counted, so overlapping fault episodes heal independently.
struct SimNetwork {
    var delay: ClosedRange<Int64>
    var lossRate: Double
    var duplicateRate: Double
    private let nodeCount: Int
    private var cuts: [Int: Int] = [:]

    init(nodeCount: Int, delay: ClosedRange<Int64>, lossRate: Double, duplicateRate: Double) {
        self.nodeCount = nodeCount
        self.delay = delay
        self.lossRate = lossRate
        self.duplicateRate = duplicateRate
    }

    /// Whether traffic from `from` to `to` gets through the current cuts.
    func passes(from: Int, to: Int) -> Bool { cuts[from * nodeCount + to, default: 0] == 0 }

    mutating func cut(from: Int, to: Int) { cuts[from * nodeCount + to, default: 0] += 1 }

    mutating func uncut(from: Int, to: Int) {
        let key = from * nodeCount + to
        guard let count = cuts[key] else { return }
        cuts[key] = count > 1 ? count - 1 : nil
    }

    /// Heals every cut and stops losing or duplicating messages; delays remain.
    mutating func heal() {
        cuts.removeAll()
        lossRate = 0
        duplicateRate = 0
    }

    var cutCount: Int { cuts.count }
}

/// Bytes and messages a node has sent, split by protocol, for the scale table.
public struct TrafficCounters: Sendable {
    public var membershipBytes = 0
    public var replicationBytes = 0
    public var messages = 0
    public var totalBytes: Int { membershipBytes + replicationBytes }
}
