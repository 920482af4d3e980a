import Foundation
import Testing

@testable import RosterCore

/// The long sweep, on demand: `ROSTER_MEMBERSHIP_SWEEP=1 swift test --filter MembershipSweepTests`.
/// It prints detection-time percentiles over hundreds of kills per cluster size and counts
/// false suspicions over many lossy minutes; the figures in `MembershipSettings` come from here.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["ROSTER_MEMBERSHIP_SWEEP"] != nil))
struct MembershipSweepTests {
    @Test(arguments: [3, 5, 7, 10])
    func detectionTimePercentiles(size: Int) {
        var rows: [(time: Int64, line: String)] = []
        for seed in UInt64(1)...500 {
            var net = MembershipSimNetwork(seed: seed &* 7_919 &+ UInt64(size))
            net.startCluster(MembershipClusterTests.names(size))
            net.run(until: 10_000) { $0.allAliveEverywhere }
            var rng = SeededRandom(seed: seed)
            net.run(for: Int64.random(in: 0..<6_000, using: &rng))
            let victim = MembershipClusterTests.names(size).randomElement(using: &rng)!
            let killedAt = net.now
            net.kill(victim)
            net.run(until: killedAt + 15_000) { $0.everyoneSees(victim, as: .failed) }
            let seen = net.runningNames.compactMap { net.firstTime($0, saw: victim, as: .failed, since: killedAt) }
            let total = (seen.count == size - 1 ? seen.max() ?? 0 : killedAt + 99_999) - killedAt
            let suspected = net.observations.filter { $0.at >= killedAt && $0.member.state == .suspect }.map(\.at).min()
            let line =
                "seed \(net.seed): suspect +\((suspected ?? killedAt) - killedAt) first failed +\((seen.min() ?? 0) - killedAt)"
                + " all failed +\(total)"
            rows.append((total, line))
            #expect(total <= 5_000, "\(line)")
        }
        let times = rows.map(\.time).sorted()
        let at = { (q: Double) in times[min(times.count - 1, Int(Double(times.count) * q))] }
        print(
            "membership sweep, \(size) nodes, \(times.count) kills: p50 \(at(0.5)) p90 \(at(0.9)) p99 \(at(0.99)) max \(at(1)) ms"
        )
        for row in rows.sorted(by: { $0.time > $1.time }).prefix(3) { print("  slowest: \(row.line)") }
    }

    @Test(arguments: [3, 5, 7, 10])
    func falseSuspicionsOverManyLossyMinutes(size: Int) {
        var suspicions = 0
        for seed in UInt64(1)...15 {
            var net = MembershipSimNetwork(seed: seed &+ 555 &* UInt64(size))
            net.delay = 1...100
            net.startCluster(MembershipClusterTests.names(size))
            net.run(until: 10_000) { $0.allAliveEverywhere }
            net.lossRate = 0.01
            net.run(for: 60_000)
            suspicions += net.observations(of: .suspect).count
            #expect(net.observations(of: .failed).isEmpty, "seed \(net.seed)")
        }
        print("membership sweep, \(size) nodes, 15 lossy minutes: \(suspicions) suspicions, all refuted")
    }
}
