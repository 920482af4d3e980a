import Testing

@testable import RosterCore

// MARK: - Precedence, refutation, generations

@Suite struct MembershipPrecedenceTests {
    @Test func precedenceFollowsSwimWithGenerationsAndFinalLeave() {
        func wins(_ update: Member, over current: Member) -> Bool { update.supersedes(current) }
        // alive(i) beats suspect/alive with a lower incarnation, not the same one.
        #expect(wins(member("b", .alive, incarnation: 2), over: member("b", .suspect, incarnation: 1)))
        #expect(wins(member("b", .alive, incarnation: 2), over: member("b", .alive, incarnation: 1)))
        #expect(!wins(member("b", .alive, incarnation: 1), over: member("b", .suspect, incarnation: 1)))
        #expect(!wins(member("b", .alive, incarnation: 1), over: member("b", .alive, incarnation: 1)))
        // suspect(i) beats alive(j ≤ i) and suspect(j < i).
        #expect(wins(member("b", .suspect, incarnation: 1), over: member("b", .alive, incarnation: 1)))
        #expect(wins(member("b", .suspect, incarnation: 2), over: member("b", .suspect, incarnation: 1)))
        #expect(!wins(member("b", .suspect, incarnation: 1), over: member("b", .suspect, incarnation: 1)))
        #expect(!wins(member("b", .suspect, incarnation: 1), over: member("b", .alive, incarnation: 2)))
        // failed(i) beats alive/suspect(j ≤ i); only the member's own refutation beats failed.
        #expect(wins(member("b", .failed, incarnation: 1), over: member("b", .suspect, incarnation: 1)))
        #expect(wins(member("b", .failed, incarnation: 1), over: member("b", .alive, incarnation: 0)))
        #expect(!wins(member("b", .suspect, incarnation: 1), over: member("b", .failed, incarnation: 1)))
        #expect(wins(member("b", .alive, incarnation: 2), over: member("b", .failed, incarnation: 1)))
        // left is final for its generation.
        #expect(wins(member("b", .left, incarnation: 0), over: member("b", .failed, incarnation: 5)))
        #expect(!wins(member("b", .alive, incarnation: 9), over: member("b", .left, incarnation: 1)))
        #expect(!wins(member("b", .failed, incarnation: 9), over: member("b", .left, incarnation: 1)))
        // A higher generation beats everything; a lower one nothing.
        #expect(wins(member("b", .alive, generation: 2), over: member("b", .left, incarnation: 7)))
        #expect(wins(member("b", .suspect, generation: 2), over: member("b", .alive, incarnation: 9)))
        #expect(!wins(member("b", .failed, incarnation: 99), over: member("b", .alive, generation: 2)))
        // News about someone else never applies.
        #expect(!wins(member("c", .alive, incarnation: 5), over: member("b")))
    }

    @Test func refutesSuspicionOfItselfByRaisingIncarnationAndGossipingAlive() throws {
        var a = membership(knowing: ["b"])
        let directives = a.receive(
            .ping(sequence: 1, gossip: [member("a", .suspect, incarnation: 0)]), from: "b:1", now: 5)
        #expect(a.myself == member("a", .alive, incarnation: 1))
        #expect(a.localHealthMultiplier == 1)
        let ack = try #require(directives.sends.first)
        #expect(ack.message.gossip.contains(member("a", .alive, incarnation: 1)))
        // Stale accusations (older incarnation or older life) change nothing.
        _ = a.receive(.ping(sequence: 2, gossip: [member("a", .suspect, incarnation: 0)]), from: "b:1", now: 6)
        _ = a.receive(
            .ping(sequence: 3, gossip: [member("a", .failed, incarnation: 7, generation: 0)]), from: "b:1", now: 7)
        #expect(a.myself.incarnation == 1)
    }

    @Test func wronglyFailedNodeRefutesAndPeersTakeItBack() throws {
        var a = membership(knowing: ["b"])
        var b = membership("b", knowing: ["a"])
        _ = b.receive(.ping(sequence: 1, gossip: [member("a", .failed, incarnation: 0)]), from: "c:1", now: 1)
        #expect(b.member(named: "a")?.state == .failed)

        // b tells a that it is failed whenever it talks to it, so a can refute.
        let reconnect = tickEvery10ms(&b, from: 10, through: 6_000).compactMap {
            if case .send(let message, "a:1") = $0.directive { message } else { nil }
        }
        let ping = try #require(reconnect.first)
        #expect(ping.gossip.first == member("a", .failed, incarnation: 0))
        let answer = a.receive(ping, from: "b:1", now: 6_000)
        #expect(a.myself.incarnation == 1)
        for send in answer.sends { _ = b.receive(send.message, from: "a:1", now: 6_001) }
        #expect(b.member(named: "a") == member("a", .alive, incarnation: 1))
    }

    @Test func higherGenerationReplacesTheOldLifeAndOlderLivesAreIgnored() {
        var a = membership(knowing: ["b"])
        _ = a.receive(.ping(sequence: 1, gossip: [member("b", .alive, incarnation: 5)]), from: "c:1", now: 1)
        let restart = a.receive(.ping(sequence: 2, gossip: [member("b", generation: 2)]), from: "c:1", now: 2)
        #expect(restart.changes.map(\.member) == [member("b", generation: 2)])
        #expect(restart.changes.first?.previous == .alive)
        #expect(a.member(named: "b") == member("b", generation: 2))

        // Gossip and answers about the old life no longer count.
        _ = a.receive(.ping(sequence: 3, gossip: [member("b", .failed, incarnation: 9)]), from: "c:1", now: 3)
        _ = a.receive(.ack(sequence: 99, from: memberID("b"), incarnation: 10, gossip: []), from: "b:1", now: 4)
        _ = a.receive(.pingRequest(sequence: 4, target: memberID("b"), gossip: []), from: "c:1", now: 5)
        #expect(a.member(named: "b") == member("b", generation: 2))
        #expect(a.relays.isEmpty)
    }

    @Test func ackFromARestartedNodeAnswersTheProbeAndInstallsTheNewLife() throws {
        var a = membership(knowing: ["b"])
        let ping = try #require(a.tick(now: 0).sends.first { $0.to == "b:1" })
        guard case .ping(let sequence, _) = ping.message else { return }
        let directives = a.receive(
            .ack(sequence: sequence, from: memberID("b", generation: 2), incarnation: 0, gossip: []), from: "b:1",
            now: 20)
        #expect(a.probes.isEmpty)
        #expect(directives.changes.map(\.member) == [member("b", generation: 2)])
    }

    @Test func leftIsFinalForItsGenerationUntilANewLife() {
        var a = membership(knowing: ["b"])
        _ = a.receive(.ping(sequence: 1, gossip: [member("b", .left, incarnation: 1)]), from: "b:1", now: 1)
        _ = a.receive(.ping(sequence: 2, gossip: [member("b", .alive, incarnation: 5)]), from: "c:1", now: 2)
        _ = a.receive(.ping(sequence: 3, gossip: [member("b", .failed, incarnation: 5)]), from: "c:1", now: 3)
        _ = a.receive(.join(member("b")), from: "b:1", now: 4)
        #expect(a.member(named: "b") == member("b", .left, incarnation: 1))
        _ = a.receive(.join(member("b", generation: 2)), from: "b:1", now: 5)
        #expect(a.member(named: "b") == member("b", generation: 2))
    }
}

// MARK: - Joining, leaving, forgetting, gossip

@Suite struct MembershipLifecycleTests {
    @Test func joinAsksEverySeedAndRetriesWithCappedBackoffForever() {
        var a = MembershipInstance(myself: memberID("a"), seed: 1)
        let first = a.join(seeds: ["s1:1", "a:1", "s2:1", "s1:1"], now: 0)
        #expect(first.sends.map(\.to) == ["s1:1", "s2:1"])
        #expect(first.sends.allSatisfy { $0.message == .join(member("a")) })
        #expect(!a.hasJoined)

        let retries = tickEvery10ms(&a, from: 10, through: 40_000).filter {
            if case .send(.join, "s1:1") = $0.directive { true } else { false }
        }.map(\.at)
        #expect(retries.prefix(8) == [500, 1_500, 3_500, 7_500, 12_500, 17_500, 22_500, 27_500])

        // One answer is enough.
        _ = a.receive(.joinReply(members: [member("s2", generation: 3), member("a")]), from: "s2:1", now: 40_001)
        #expect(a.hasJoined)
        #expect(a.liveMembers.map(\.name) == ["a", "s2"])
        // (Until s2, never answering here, is failed: alone again, a would go back to its seeds.)
        let after = tickEvery10ms(&a, from: 40_010, through: 42_500)
        #expect(!after.contains { if case .send(.join, _) = $0.directive { true } else { false } })
    }

    @Test func aClusterOfOneNeedsNoJoin() {
        var a = MembershipInstance(myself: memberID("a"), seed: 1)
        #expect(a.join(seeds: ["a:1"], now: 0).isEmpty)
        #expect(a.hasJoined)
        #expect(tickEvery10ms(&a, from: 0, through: 10_000).isEmpty)
        #expect(a.members == [member("a")])
    }

    @Test func seedAnswersAJoinWithItsWholeTableAndGossipsTheJoiner() throws {
        var s = membership("s", knowing: ["b", "c"])
        let directives = s.receive(.join(member("d")), from: "d:1", now: 10)
        #expect(directives.changes.map(\.member) == [member("d")])
        let reply = try #require(directives.sends.first { $0.to == "d:1" })
        #expect(reply.message == .joinReply(members: ["b", "c", "d", "s"].map { member($0) }))
        // The next message to anyone carries the news.
        let ack = s.receive(.ping(sequence: 1, gossip: []), from: "b:1", now: 11)
        #expect(ack.sends.first?.message.gossip.contains(member("d")) == true)
    }

    @Test func leaveAnnouncesLeftToEveryLiveMemberAndThenOnlyAnswersPings() {
        var a = membership(knowing: ["b", "c"])
        _ = a.receive(.ping(sequence: 1, gossip: [member("c", .failed)]), from: "b:1", now: 1)
        let directives = a.leave(now: 100)
        let gone = member("a", .left, incarnation: 1)
        #expect(directives.changes.map(\.member) == [gone])
        #expect(directives.changes.first?.previous == .alive)
        #expect(directives.sends.map(\.to) == ["b:1"])
        #expect(directives.sends.first?.message.gossip == [gone])
        #expect(a.myself == gone)
        #expect(!a.liveMembers.contains { $0.name == "a" })

        #expect(a.tick(now: 1_000).isEmpty)
        let answer = a.receive(.ping(sequence: 9, gossip: []), from: "b:1", now: 1_001)
        #expect(answer.sends.first?.message == .ack(sequence: 9, from: memberID("a"), incarnation: 1, gossip: [gone]))
        #expect(a.receive(.join(member("z")), from: "z:1", now: 1_002).isEmpty)
    }

    @Test func failedAndLeftMembersAreForgottenAfterRetention() {
        var a = membership(knowing: ["b", "c", "d"])
        let gossip = [member("b", .failed), member("c", .left)]
        _ = a.receive(.ping(sequence: 1, gossip: gossip), from: "d:1", now: 1_000)
        _ = a.tick(now: 600_999)
        #expect(a.members.map(\.name) == ["a", "b", "c", "d"])
        _ = a.tick(now: 601_000)
        #expect(a.members.map(\.name) == ["a", "d"])
    }

    @Test func gossipIsCappedPerMessageAndEachUpdateIsSentABoundedNumberOfTimes() {
        var a = MembershipInstance(myself: memberID("a"), seed: 1)
        let names = (0..<40).map { "m\($0)" }
        _ = a.receive(.joinReply(members: names.map { member($0) }), from: "m0:1", now: 0)
        var sent: [String: Int] = [:]
        for sequence in 1...200 {
            let answer = a.receive(.ping(sequence: UInt64(sequence), gossip: []), from: "m1:1", now: 1)
            let gossip = answer.sends.first?.message.gossip ?? []
            #expect(gossip.count <= 16)
            for update in gossip { sent[update.name, default: 0] += 1 }
        }
        // λ · ln(n + 1) with λ = 3 and 41 live members: ⌈3 · 3.74⌉ = 12.
        #expect(a.retransmitLimit == 12)
        #expect(sent.count == 40)
        #expect(sent.values.allSatisfy { $0 == 12 })
    }
}
