import RosterCore

/// Watches every queue and buffer for growth without bound, after every event. The limits are
/// far above what a healthy run reaches and far below what a leak reaches in a run's length.
struct BoundsWatch {
    var maxInFlight = 0
    var maxEventQueue = 0
    var maxLogQueue = 0
    var maxRumorOutbox = 0
    var maxRenewalOutbox = 0
    var maxMembers = 0
    var maxRecords = 0
    var violation: String?
    private var step = 0

    mutating func observe(_ sim: Simulation) {
        step += 1
        maxInFlight = max(maxInFlight, sim.inFlightMessages)
        maxEventQueue = max(maxEventQueue, sim.queue.count)
        // Looking at every node after every event would cost more than the events. Every 64th
        // event (every 8n-th in large clusters, which have that many more events per second)
        // still catches anything that grows without bound, at a fixed cost per event.
        guard step % max(64, 8 * sim.nodes.count) == 0 else { return }
        for i in sim.nodes.indices {
            // Read in place: copying each node out would retain every one of its buffers.
            guard let sizes = sim.nodes[i]?.bufferSizes else { continue }
            maxLogQueue = max(maxLogQueue, sizes.log)
            maxRumorOutbox = max(maxRumorOutbox, sizes.rumors)
            maxRenewalOutbox = max(maxRenewalOutbox, sizes.renewals)
            maxMembers = max(maxMembers, sizes.members)
            maxRecords = max(maxRecords, sizes.records)
        }
        guard violation == nil, sim.runsWorkload else { return }
        let n = sim.config.nodeCount
        let checks: [(String, Int, Int)] = [
            ("messages in flight", maxInFlight, 400 * n),
            ("scheduled events", maxEventQueue, 600 * n),
            ("log entries awaiting fsync", maxLogQueue, 2_000),
            ("records waiting in a rumor outbox", maxRumorOutbox, 500),
            ("renewals waiting in an outbox", maxRenewalOutbox, 500),
            ("members known to a node", maxMembers, n),
            ("records, tombstone marks or forgotten keys at a node", maxRecords, sim.config.keyCount),
        ]
        for (what, seen, limit) in checks where seen > limit {
            violation = "unbounded growth: \(seen) \(what), limit \(limit)"
        }
    }
}

/// What a run found.
public struct SimResult: Sendable {
    public var config: SimConfig
    public var failures: [String]
    /// Virtual milliseconds from the heal until every live node held the same digest and the
    /// same view of who is live; nil if that never happened within the deadline.
    public var convergenceMillis: Int64?
    public var ackedWrites: Int
    public var lostWrites: Int
    public var resurrections: Int
    public var operations: Int
    public var trace: [SimTrace.Line]
    public var passed: Bool { failures.isEmpty }

    /// Anti-entropy rounds the convergence took.
    public var convergenceRounds: Double? {
        convergenceMillis.map { Double($0) / Double(config.antiEntropyMillis) }
    }

    /// One line of figures: operations, acknowledged and lost writes, convergence.
    public var summaryLine: String {
        var converged = "never"
        if let millis = convergenceMillis, let rounds = convergenceRounds {
            converged = "\(millis) ms (\(Double(Int(rounds * 10)) / 10) anti-entropy rounds)"
        }
        return "  \(operations) client operations, \(ackedWrites) writes acknowledged, \(lostWrites) lost, "
            + "\(resurrections) resurrected; converged \(converged) after the heal"
    }

    public var report: String {
        var lines = ["seed \(config.seed): " + (passed ? "ok" : "FAILED"), "  \(config)"]
        lines += failures.prefix(12).map { "  ✗ \($0)" }
        if failures.count > 12 { lines.append("  … and \(failures.count - 12) more") }
        if !passed {
            lines.append("  last events (replay with `make sim SEED=\(config.seed)`):")
            lines += trace.map { "    \($0)" }
        }
        return lines.joined(separator: "\n")
    }
}

/// The invariants, checked once the cluster is healed.
extension Simulation {
    /// Whether every live node holds the same digest and sees exactly the live nodes as live.
    func convergenceProblems() -> [String] {
        let up = upIndices
        guard let first = up.first, let reference = nodes[first] else { return ["no node is running"] }
        var problems: [String] = []
        for i in up.dropFirst() {
            guard let node = nodes[i] else { continue }
            if node.state.digest.root != reference.state.digest.root {
                problems.append(
                    "\(names[i]) holds \(node.state.records.count) records, digest \(node.state.digest.root); "
                        + "\(names[first]) holds \(reference.state.records.count), digest \(reference.state.digest.root)")
            }
        }
        for i in up {
            guard let node = nodes[i] else { continue }
            for j in nodes.indices where j != i {
                let member = node.membership.member(named: names[j])
                if nodes[j] != nil {
                    if member?.state != .alive || member?.identity.generation != generations[j] {
                        problems.append("\(names[i]) sees \(names[j]) as \(member.map { "\($0)" } ?? "unknown"), not alive as generation \(generations[j])")
                    }
                } else if member?.isLive == true {
                    problems.append("\(names[i]) sees \(names[j]) as \(member!.state.rawValue) though it is down")
                }
            }
        }
        return problems
    }

    func checkConvergence() {
        guard convergedAt == nil else { return }
        if convergenceProblems().isEmpty {
            convergedAt = now
            trace.add(now, "converged \(now - healedAt) ms after the heal")
        } else {
            queue.schedule(.checkConvergence, at: now + 50)
        }
    }

    /// No acknowledged write lost: the key's final version is the write itself or causally
    /// after it (a merged clock that covers it), or the key is gone after a deletion that
    /// causally followed it. Equal clocks must mean the same version.
    func lostWrites() -> [String] {
        guard let reference = upIndices.first.flatMap({ nodes[$0] }) else { return [] }
        var lost: [String] = []
        for write in history.acked {
            let key = write.record.key
            // A node left down at the end still holds its acknowledged writes on its disk, but
            // those it never got out cannot be anywhere else: durability is what to check there.
            if nodes[write.node] == nil {
                let durable = disks[write.node].records[key]
                let order = durable?.clock.compare(to: write.record.clock)
                if order != .after && order != .equal {
                    lost.append("acknowledged write of \(key) \(write.record.clock) is not on the disk of \(names[write.node]), which is down")
                }
                continue
            }
            guard let final = reference.state.record(for: key) else {
                let deleted = (history.tombstones[key, default: []] + history.collected[key, default: []]).contains {
                    let order = $0.compare(to: write.record.clock)
                    return order == .after || order == .equal
                }
                if !deleted {
                    lost.append("acknowledged write of \(key) \(write.record.clock) at \(names[write.node]) t=\(write.at) is gone, and no deletion followed or beat it")
                }
                continue
            }
            switch final.clock.compare(to: write.record.clock) {
            case .after:
                continue
            case .equal where final.instance == write.record.instance:
                continue
            default:
                lost.append(
                    "acknowledged write of \(key) \(write.record.clock) stamp \(write.record.stamp) at \(names[write.node]) t=\(write.at) "
                        + "lost: final is \(final.clock) stamp \(final.stamp) from \(final.origin)\(final.isTombstone ? " (tombstone)" : "")")
            }
        }
        return lost
    }

    /// No resurrection: an acknowledged deregistration is undone only by a later registration,
    /// whose HLC stamp is then larger (a causally later write always has the larger stamp).
    func resurrections() -> [String] {
        guard let reference = upIndices.first.flatMap({ nodes[$0] }) else { return [] }
        var found: [String] = []
        for write in history.acked where write.record.isTombstone && nodes[write.node] != nil {
            guard let final = reference.state.record(for: write.record.key), !final.isTombstone else { continue }
            if final.stamp <= write.record.stamp {
                found.append(
                    "\(write.record.key) deregistered at \(names[write.node]) (stamp \(write.record.stamp), acknowledged t=\(write.at)) "
                        + "is back with an older version: stamp \(final.stamp) from \(final.origin)")
            }
        }
        return found
    }
}
