import RosterCore

/// Scale by simulation: how fast one write reaches every node, and what a node sends per round,
/// idle and under writes, for growing clusters with the production timers and fanout 3.
///
/// A round is one anti-entropy interval (1 s): the period in which every node exchanges a digest
/// with one random peer. Rumors do not wait for rounds: each hop costs one network delay (here
/// 5-15 ms), so the hop count is reported too. No faults and no loss: this measures the
/// protocol, the fault sweep measures its safety.
public enum ScaleBenchmark {
    public struct Row: Sendable {
        public var nodes: Int
        /// From a cold start of every node at once, joining through one: until every node
        /// knows every other as alive, and until the last of that news stopped being gossiped.
        public var millisToFullView: Int64
        public var millisToQuiet: Int64
        public var rumorHops: UInt8
        /// Over `writes` single writes: the worst time until 99.9 % / all nodes held it, and
        /// the median time until all did.
        public var millisTo999: Int64
        public var millisToAll: Int64
        public var medianMillisToAll: Int64
        /// The highest rumor hop that first brought the write to a node, and the share of nodes
        /// the rumor reached at all (the rest were filled by anti-entropy).
        public var deepestHop: Int
        public var reachedByRumor: Double
        public var idleMembershipBytes: Double
        public var idleReplicationBytes: Double
        public var writeMembershipBytes: Double
        public var writeReplicationBytes: Double
        public var writesPerSecond: Int
    }

    static let roundMillis: Int64 = 1_000
    /// Single writes timed per cluster size; the table shows the worst.
    public static let writes = 20

    /// Measures one cluster size.
    public static func measure(nodes n: Int, seed: UInt64 = 7, writes: Int = Self.writes, writesPerSecond: Int = 20) -> Row {
        var config = SimConfig(seed: seed)
        config.nodeCount = n
        config.delayMillis = 5...15
        config.lossRate = 0
        config.duplicateRate = 0
        config.maxSkewMillis = 0
        config.maxDriftPPM = 0
        config.joinSeeds = 1
        let sim = Simulation(config: config)
        sim.runsWorkload = false
        for i in 0..<n { sim.start(i) }
        // Warm up until every node knows every other as alive, then until the join's news has
        // been gossiped its full count of times: only then is the cluster idle.
        let fullView = runUntil(sim, deadline: 120_000) { $0.membership.liveMemberCount == n }
        let quiet = runUntil(sim, deadline: 600_000) { $0.membership.pendingGossipCount == 0 }
        sim.run(until: sim.now + 2 * roundMillis)
        let idle = window(sim, rounds: 10) {}
        // One write at a time at a random node; note when each node first holds it.
        var rng = SplitMix64(seed: seed ^ 0xBEEF)
        var worst999: Int64 = 0, deepest = 0, rumorShare = 1.0
        var allTimes: [Int64] = []
        let hops = config.replication.rumorHops(clusterSize: n)
        for w in 0..<writes {
            let key = "probe\(w)"
            var firstSeen: [Int: Int64] = [:]
            var byRumor = 0
            let origin = Int.random(in: 0..<n, using: &rng)
            let started = sim.now
            sim.onApplied = { node, records, left in
                guard firstSeen[node] == nil, records.contains(where: { $0.key == key }) else { return }
                firstSeen[node] = sim.now - started
                if let left {
                    byRumor += 1
                    deepest = max(deepest, Int(hops) - Int(left))
                }
            }
            write(sim, node: origin, key: key)
            firstSeen[origin] = 0
            sim.run(until: started + 30 * roundMillis) { firstSeen.count == n }
            let times = firstSeen.values.sorted()
            let needed = Int((Double(n) * 0.999).rounded(.up))
            worst999 = max(worst999, times.count >= needed ? times[needed - 1] : Int64.max)
            allTimes.append(times.count == n ? times[n - 1] : Int64.max)
            rumorShare = min(rumorShare, Double(byRumor + 1) / Double(n))
            sim.onApplied = nil
            sim.run(until: sim.now + 2 * roundMillis)
        }
        // Traffic under a steady stream of writes at random nodes.
        let gap = max(1, 1_000 / Int64(writesPerSecond))
        var counter = 0
        let busy = window(sim, rounds: 10) {
            var t = sim.now
            let end = sim.now + 10 * roundMillis
            while t < end {
                sim.run(until: t)
                counter += 1
                write(sim, node: Int.random(in: 0..<n, using: &rng), key: "load\(counter % 200)")
                t += gap
            }
        }
        return Row(
            nodes: n, millisToFullView: fullView, millisToQuiet: quiet, rumorHops: hops, millisTo999: worst999, millisToAll: allTimes.max() ?? 0,
            medianMillisToAll: allTimes.sorted()[allTimes.count / 2], deepestHop: deepest,
            reachedByRumor: rumorShare, idleMembershipBytes: idle.membership, idleReplicationBytes: idle.replication,
            writeMembershipBytes: busy.membership, writeReplicationBytes: busy.replication, writesPerSecond: writesPerSecond)
    }

    /// Runs the clock, checking every 100 ms, until every node satisfies `condition`; returns
    /// when that was, or `Int64.max` if `deadline` came first.
    private static func runUntil(_ sim: Simulation, deadline: Int64, _ condition: (SimNode) -> Bool) -> Int64 {
        var nextCheck = sim.now
        var done = false
        sim.run(until: deadline) {
            guard sim.now >= nextCheck else { return false }
            nextCheck = sim.now + 100
            done = sim.nodes.allSatisfy { $0.map(condition) ?? true }
            return done
        }
        return done ? sim.now : Int64.max
    }

    /// Bytes per node per round sent during `rounds` rounds in which `drive` runs the clock.
    private static func window(_ sim: Simulation, rounds: Int64, drive: () -> Void) -> (membership: Double, replication: Double) {
        let before = sim.traffic
        let start = sim.now
        drive()
        sim.run(until: start + rounds * roundMillis)
        let n = Double(sim.config.nodeCount) * Double(rounds)
        let membership = zip(sim.traffic, before).map { $0.membershipBytes - $1.membershipBytes }.reduce(0, +)
        let replication = zip(sim.traffic, before).map { $0.replicationBytes - $1.replicationBytes }.reduce(0, +)
        return (Double(membership) / n, Double(replication) / n)
    }

    /// A client registration at `node`, committed and rumored as the registry does it.
    private static func write(_ sim: Simulation, node i: Int, key: String) {
        guard let committed = sim.mutateNode(i, { node in
            let instance = ServiceInstance(
                serviceName: "bench", instanceID: key, host: "10.1.0.1", port: 8080,
                registeredAt: Timestamp(millisecondsSinceEpoch: node.clock.wall(sim.now)), node: node.name)
            return node.commitLocal(key: key, serviceName: "bench", instance: instance, now: sim.now)
        }) else { return }
        if committed.startFlush { sim.scheduleFsync(i) }
        sim.scheduleRumorFlush(i)
    }

    /// The table for BENCHMARKS.md.
    public static func markdown(sizes: [Int], progress: (Row) -> Void = { _ in }) -> String {
        var lines = [
            "## Scale by simulation",
            "",
            "Written by `make bench-sim` (`roster-sim --scale`): the real membership and replication cores in the deterministic",
            "simulator, fanout 3, production timers (anti-entropy every 1 s, rumors sent as writes land, membership tick 50 ms),",
            "5-15 ms per network hop, no loss. A round is one anti-entropy interval (1 s). Cold start: every node started at",
            "once, all joining through the first; when every node saw every other alive, and when the last of that news had",
            "been gossiped its λ·ln(n+1) times. Spread: \(writes) single writes, one at a time, at random nodes; the worst time",
            "until 99.9 % of nodes held the write, and the median and worst until all did. Bytes: everything a node sends",
            "(payload plus 6 bytes of framing) per node per round, membership + replication, idle (after the cold start went",
            "quiet) and under 20 registrations per second cluster-wide.",
            "",
            "| nodes | cold start: full view / gossip quiet | rumor hops | 99.9 % hold the write | all hold it: median / worst | deepest hop used | reached by rumor (least) | idle B/node/round | under writes B/node/round |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        var rows: [Row] = []
        for n in sizes {
            let row = measure(nodes: n)
            rows.append(row)
            progress(row)
            lines.append(
                "| \(row.nodes) | \(seconds(row.millisToFullView)) / \(seconds(row.millisToQuiet)) | \(row.rumorHops) | \(format(row.millisTo999)) | \(row.medianMillisToAll) / \(format(row.millisToAll)) | \(row.deepestHop) | "
                    + "\(percent(row.reachedByRumor)) | \(bytes(row.idleMembershipBytes)) + \(bytes(row.idleReplicationBytes)) | "
                    + "\(bytes(row.writeMembershipBytes)) + \(bytes(row.writeReplicationBytes)) |")
        }
        lines += verdicts(rows)
        return lines.joined(separator: "\n") + "\n"
    }

    /// The targets, checked against the rows: spread at the largest cluster, and idle traffic
    /// that does not grow with the cluster.
    static func verdicts(_ rows: [Row]) -> [String] {
        guard let largest = rows.max(by: { $0.nodes < $1.nodes }), let smallest = rows.min(by: { $0.nodes < $1.nodes })
        else { return [] }
        let rounds = { (millis: Int64) in millis == Int64.max ? Int64.max : (millis + roundMillis - 1) / roundMillis }
        let (r999, rAll) = (rounds(largest.millisTo999), rounds(largest.millisToAll))
        let spreadMet = r999 <= 6 && rAll <= 10
        let name = { (nodes: Int) in "n" + String(repeating: "0", count: String(max(nodes - 1, 1)).count) }
        let idle = rows.sorted { $0.nodes < $1.nodes }.map { bytes($0.idleMembershipBytes) }.joined(separator: ", ")
        return [
            "",
            "Target at \(largest.nodes) nodes: 99.9 % within 6 rounds and all within 10. Measured: \(r999) and \(rAll) rounds, "
                + (spreadMet ? "met." : "**missed**."),
            "Idle traffic beyond the digest, from \(smallest.nodes) to \(largest.nodes) nodes: \(idle) B of membership per node per "
                + "round. A node probes one peer per probe interval whatever the cluster size, so this grows only with the length "
                + "of node names in pings and acks (\(name(smallest.nodes)) to \(name(largest.nodes)) here); the digest is a fixed \(bytes(largest.idleReplicationBytes)) B.",
        ]
    }

    static func format(_ millis: Int64) -> String {
        guard millis != Int64.max else { return "never (30 rounds)" }
        let rounds = (millis + roundMillis - 1) / roundMillis
        return "\(millis) ms (\(rounds) round\(rounds == 1 ? "" : "s"))"
    }

    static func seconds(_ millis: Int64) -> String {
        guard millis != Int64.max else { return "never" }
        return "\(Double(millis / 100) / 10) s"
    }

    static func percent(_ share: Double) -> String { "\(Double(Int(share * 1000)) / 10) %" }
    static func bytes(_ value: Double) -> String { String(Int(value.rounded())) }
}
