import Testing

@testable import RosterCore

/// The indexes that keep membership cheap at 1,000 members must say exactly what recomputing
/// them from the records says, or the protocol (and the simulator's replay) would change.
@Suite struct MembershipIndexTests {
    @Test(arguments: [1, 2, 3] as [UInt64])
    func memberTableIndexesMatchARecomputationAfterEveryChange(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var table = MemberTable()
        let names = (0..<12).map { "m\($0)" }
        // Few addresses, so that names share them as a renamed node's old and new names do.
        let addresses = (0..<5).map { "h\($0):1" }
        for step in 0..<2_000 {
            let name = names.randomElement(using: &rng)!
            if Int.random(in: 0..<6, using: &rng) == 0 {
                table[name] = nil
            } else {
                let identity = MemberIdentity(
                    name: name, generation: 1, address: addresses.randomElement(using: &rng)!)
                let state = MemberState.allCases.randomElement(using: &rng)!
                table[name] = MemberRecord(
                    member: Member(identity: identity, state: state, incarnation: 0), since: Int64(step),
                    suspicionDeadline: nil)
            }
            let members = table.values.map(\.member)
            #expect(table.liveNames == members.filter(\.isLive).map(\.name).sorted())
            #expect(table.suspectNames == members.filter { $0.state == .suspect }.map(\.name).sorted())
            #expect(table.departedNames == members.filter { !$0.isLive }.map(\.name).sorted())
            for address in addresses {
                #expect(
                    table.names(atAddress: address)
                        == members.filter { $0.identity.address == address }.map(\.name).sorted())
            }
        }
    }

    @Test func instanceCountsAndPeersAgreeWithTheMemberList() {
        var a = membership(knowing: ["b", "c", "d", "e"])
        _ = a.receive(
            .ping(sequence: 1, gossip: [member("c", .suspect), member("d", .failed), member("e", .left, incarnation: 1)]),
            from: "b:1", now: 1)
        #expect(a.memberCount == a.members.count)
        #expect(a.liveMembers == a.members.filter(\.isLive))
        #expect(a.liveMemberCount == 3)
        #expect(a.livePeerNames == ["b", "c"])
        #expect(a.knowsMember(atAddress: "d:1"))
        #expect(!a.knowsMember(atAddress: "z:1"))
        _ = a.leave(now: 2)
        #expect(a.liveMembers.map(\.name) == ["b", "c"])
        #expect(a.liveMemberCount == 2)
    }

    @Test(arguments: [7, 8, 9] as [UInt64])
    func gossipQueueTakesWhatSortingTheWholeQueueWould(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var queue = GossipQueue()
        var reference = SortingGossipQueue()
        let names = (0..<40).map { "m\($0)" }
        for _ in 0..<5_000 {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<4:
                let update = member(names.randomElement(using: &rng)!, incarnation: UInt64.random(in: 0..<9, using: &rng))
                queue.enqueue(update)
                reference.enqueue(update)
            case 4:
                let name = names.randomElement(using: &rng)!
                queue.remove(name)
                reference.remove(name)
            default:
                let max = Int.random(in: 0...16, using: &rng)
                let limit = Int.random(in: 1...6, using: &rng)
                let excluding = Bool.random(using: &rng) ? names.randomElement(using: &rng) : nil
                #expect(
                    queue.take(max: max, limit: limit, excluding: excluding)
                        == reference.take(max: max, limit: limit, excluding: excluding))
            }
            #expect(queue.isEmpty == reference.entries.isEmpty)
        }
    }

    @Test func randomSampleIsDistinctRespectsExclusionAndIsUniform() {
        var rng = SplitMix64(seed: 11)
        let pool = Array(0..<10)
        var counts = Array(repeating: 0, count: 10)
        for _ in 0..<20_000 {
            let picked = pool.randomSample(3, excluding: { $0 == 4 }, using: &rng)
            #expect(picked.count == 3)
            #expect(Set(picked).count == 3)
            #expect(!picked.contains(4))
            for value in picked { counts[value] += 1 }
        }
        // 60,000 picks over 9 eligible values: about 6,667 each.
        #expect(counts[4] == 0)
        for (value, count) in counts.enumerated() where value != 4 {
            #expect((6_200...7_100).contains(count), "value \(value) picked \(count) times")
        }
        // Asking for more than there is gives everything eligible, once each.
        #expect(Set(pool.randomSample(50, excluding: { $0 < 3 }, using: &rng)) == Set(3..<10))
        #expect(pool.randomSample(0, using: &rng).isEmpty)
        #expect([Int]().randomSample(2, using: &rng).isEmpty)
        // The same seed picks the same.
        var first = SplitMix64(seed: 5), second = SplitMix64(seed: 5)
        #expect(pool.randomSample(4, using: &first) == pool.randomSample(4, using: &second))
    }
}

/// The gossip queue as it was before it had a heap: sort everything on every take.
private struct SortingGossipQueue {
    var entries: [NodeID: GossipQueue.Entry] = [:]
    var counter: UInt64 = 0

    mutating func enqueue(_ member: Member) {
        counter &+= 1
        entries[member.name] = GossipQueue.Entry(member: member, sent: 0, order: counter)
    }

    mutating func remove(_ name: NodeID) { entries[name] = nil }

    mutating func take(max: Int, limit: Int, excluding: NodeID?) -> [Member] {
        guard max > 0 else { return [] }
        let chosen = entries.values.filter { $0.member.name != excluding }
            .sorted { ($0.sent, $1.order) < ($1.sent, $0.order) }.prefix(max)
        for entry in chosen {
            if entry.sent + 1 >= limit {
                entries[entry.member.name] = nil
            } else {
                entries[entry.member.name]?.sent += 1
            }
        }
        return chosen.map(\.member)
    }
}
