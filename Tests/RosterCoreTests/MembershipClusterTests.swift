import Testing

@testable import RosterCore

/// Whole clusters in `MembershipSimNetwork`: virtual time, seeded faults, no sockets, no sleeps.
/// Every failure message names the seed that replays it.
@Suite struct MembershipClusterTests {
    static func names(_ count: Int) -> [NodeID] { (1...count).map { "n\($0)" } }

    /// A formed cluster: started from one seed and run until everybody sees everybody alive.
    static func formedCluster(size: Int, seed: UInt64, delay: ClosedRange<Int64> = 1...5) -> MembershipSimNetwork {
        var net = MembershipSimNetwork(seed: seed)
        net.delay = delay
        net.startCluster(names(size))
        let formed = net.run(until: 10_000) { $0.allAliveEverywhere }
        #expect(formed, "seed \(seed): \(size) nodes did not converge within 10 s")
        return net
    }

    @Test(arguments: [3, 5])
    func clusterFormedFromASingleSeedConvergesToAllAlive(size: Int) {
        for seed in UInt64(1)...20 {
            var net = MembershipSimNetwork(seed: seed)
            net.startCluster(Self.names(size))
            let formed = net.run(until: 3_000) { $0.allAliveEverywhere }
            #expect(formed, "seed \(seed): not every node lists every other as alive after 3 s")
            #expect(net.observations(of: .suspect).isEmpty, "seed \(seed)")
        }
    }

    /// Worst case for the detector: the dead node's traffic silently vanishes (no connection
    /// refused), and the kill lands at a random moment after the cluster formed.
    @Test(arguments: [3, 5, 10])
    func killedNodeIsFailedAtEverySurvivorWithinFiveSeconds(size: Int) {
        var worst: (time: Int64, seed: UInt64) = (0, 0)
        var total: Int64 = 0
        let seeds = UInt64(1)...100
        for seed in seeds {
            var net = Self.formedCluster(size: size, seed: seed &* 7_919 &+ UInt64(size))
            var rng = SeededRandom(seed: seed)
            net.run(for: Int64.random(in: 0..<6_000, using: &rng))
            let victim = Self.names(size).randomElement(using: &rng)!
            let killedAt = net.now
            net.kill(victim)
            let detected = net.run(until: killedAt + 10_000) { $0.everyoneSees(victim, as: .failed) }
            let survivors = net.runningNames
            let times = survivors.compactMap { net.firstTime($0, saw: victim, as: .failed, since: killedAt) }
            let slowest = (times.max() ?? 10_000) - killedAt
            #expect(detected && times.count == survivors.count, "seed \(net.seed): \(victim) not failed everywhere")
            #expect(slowest <= 5_000, "seed \(net.seed): \(victim) failed everywhere only after \(slowest) ms")
            // Nobody but the victim was ever suspected.
            let wrong = net.observations.filter { $0.member.name != victim && $0.member.state != .alive }
            #expect(wrong.isEmpty, "seed \(net.seed): false suspicions \(wrong.map(\.member))")
            total += slowest
            if slowest > worst.time { worst = (slowest, net.seed) }
        }
        print(
            "membership: \(size) nodes, \(seeds.count) kills: worst detection \(worst.time) ms (seed \(worst.seed)),"
                + " mean \(total / Int64(seeds.count)) ms")
    }

    /// On loopback a dead process refuses connections at once; the detector uses that.
    @Test func refusedConnectionsMakeDetectionFaster() {
        var worst: Int64 = 0
        for seed in UInt64(1)...20 {
            var net = Self.formedCluster(size: 5, seed: seed)
            net.reportsConnectionFailures = true
            let killedAt = net.now
            net.kill("n3")
            #expect(net.run(until: killedAt + 5_000) { $0.everyoneSees("n3", as: .failed) }, "seed \(seed)")
            let seen = net.runningNames.compactMap { net.firstTime($0, saw: "n3", as: .failed, since: killedAt) }
            worst = max(worst, (seen.max() ?? killedAt + 5_000) - killedAt)
        }
        print("membership: 5 nodes, 20 kills with refused connections: worst detection \(worst) ms")
    }

    @Test(arguments: [3, 5, 10])
    func noFalsePositivesOverAMinuteWithSlowLossyMessages(size: Int) {
        var suspicions = 0
        for seed in UInt64(1)...4 {
            var net = Self.formedCluster(size: size, seed: seed &+ 1_000 &* UInt64(size), delay: 1...100)
            net.lossRate = 0.01
            let start = net.now
            net.run(for: 60_000)
            let failures = net.observations.filter {
                $0.at >= start && ($0.member.state == .failed || $0.member.state == .left)
            }
            #expect(
                failures.isEmpty, "seed \(net.seed): false failures \(failures.map { "\($0.observer): \($0.member)" })")
            net.lossRate = 0
            let settled = net.run(for: 5_000) { $0.allAliveEverywhere }
            #expect(settled, "seed \(net.seed): not all alive after the lossy minute")
            suspicions += net.observations(of: .suspect).count
            for name in net.runningNames {
                #expect(
                    net.nodes[name]?.localHealthMultiplier ?? 0 <= 2,
                    "seed \(net.seed): \(name) thinks itself unhealthy")
            }
        }
        print("membership: \(size) nodes, 4 lossy minutes: \(suspicions) suspicions raised, all refuted")
    }

    @Test func gracefulLeaveIsSeenAsLeftNotFailed() {
        for seed in UInt64(1)...10 {
            var net = Self.formedCluster(size: 5, seed: seed)
            let leftAt = net.now
            net.leave("n2")
            net.run(for: 100)
            net.kill("n2")  // the process exits right after announcing
            let seen = net.run(until: leftAt + 3_000) { $0.everyoneSees("n2", as: .left) }
            #expect(seen, "seed \(seed): not every node recorded n2 as left")
            net.run(for: 10_000)
            #expect(net.everyoneSees("n2", as: .left), "seed \(seed)")
            let wrong = net.observations.filter { $0.member.name == "n2" && $0.member.state == .failed }
            #expect(wrong.isEmpty, "seed \(seed): n2 was marked failed by \(wrong.map(\.observer))")
        }
    }

    @Test(arguments: [false, true])
    func restartedNodeWithAHigherGenerationIsAliveAgainEverywhere(afterDetection: Bool) {
        for seed in UInt64(1)...10 {
            var net = Self.formedCluster(size: 5, seed: seed)
            net.kill("n4")
            if afterDetection {
                #expect(net.run(for: 10_000) { $0.everyoneSees("n4", as: .failed) }, "seed \(seed)")
            } else {
                net.run(for: 300)
            }
            net.start("n4", seeds: ["n1"])
            #expect(net.run(for: 5_000) { $0.allAliveEverywhere }, "seed \(seed): restarted n4 not alive everywhere")
            #expect(net.runningNames.allSatisfy { net.member("n4", at: $0)?.identity.generation == 2 }, "seed \(seed)")
            // The new life is never mistaken for the dead one afterwards.
            let start = net.now
            net.run(for: 10_000)
            #expect(!net.observations.contains { $0.at >= start && $0.member.state != .alive }, "seed \(seed)")
        }
    }

    @Test func falselySuspectedNodeRefutesAndIsNeverFailed() {
        for seed in UInt64(1)...10 {
            var net = Self.formedCluster(size: 5, seed: seed)
            let others = ["n1", "n2", "n4", "n5"]
            net.partition(["n3"], others)
            let suspected = net.run(for: 10_000) { net in others.contains { net.state(of: "n3", at: $0) == .suspect } }
            #expect(suspected, "seed \(seed)")
            net.heal()
            net.run(for: 10_000)
            #expect(net.allAliveEverywhere, "seed \(seed)")
            #expect((net.nodes["n3"]?.myself.incarnation ?? 0) >= 1, "seed \(seed): n3 did not refute")
            #expect(net.observations(of: .failed).isEmpty, "seed \(seed): a refutable suspicion became a failure")
        }
    }

    @Test func joinRetriesUntilASeedBecomesReachable() {
        var net = MembershipSimNetwork(seed: 3)
        net.start("n2", seeds: ["n1"])
        net.start("n3", seeds: ["n1"])
        net.run(until: 20_000)
        #expect(net.nodes["n2"]?.hasJoined == false)
        #expect(net.nodes["n2"]?.members.map(\.name) == ["n2"])
        net.start("n1", seeds: [])
        // The backoff is capped at 5 s, so the next retry comes within that.
        #expect(net.run(for: 6_000) { $0.allAliveEverywhere })
        #expect(net.nodes.values.allSatisfy { $0.hasJoined })
    }

    @Test func healedPartitionMergesBackIntoOneCluster() {
        for seed in UInt64(1)...5 {
            var net = Self.formedCluster(size: 5, seed: seed)
            let left = ["n1", "n2"]
            let right = ["n3", "n4", "n5"]
            net.partition(left, right)
            let split = net.run(for: 20_000) { net in
                left.allSatisfy { l in right.allSatisfy { net.state(of: $0, at: l) == .failed } }
                    && right.allSatisfy { r in left.allSatisfy { net.state(of: $0, at: r) == .failed } }
            }
            #expect(split, "seed \(seed): the two sides did not fail each other")
            net.heal()
            #expect(net.run(for: 30_000) { $0.allAliveEverywhere }, "seed \(seed): no merge 30 s after healing")
        }
    }
}
