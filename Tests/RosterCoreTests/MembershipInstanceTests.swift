import Testing

@testable import RosterCore

// MARK: - Helpers

func memberID(_ name: String, generation: UInt64 = 1) -> MemberIdentity {
    MemberIdentity(name: name, generation: generation, address: "\(name):1")
}

func member(_ name: String, _ state: MemberState = .alive, incarnation: UInt64 = 0, generation: UInt64 = 1) -> Member {
    Member(identity: memberID(name, generation: generation), state: state, incarnation: incarnation)
}

/// An instance named `name` that already knows `others` as alive (through a join reply).
func membership(_ name: String = "a", knowing others: [String], seed: UInt64 = 1) -> MembershipInstance {
    var instance = MembershipInstance(myself: memberID(name), settings: MembershipSettings(), seed: seed)
    _ = instance.receive(.joinReply(members: others.map { member($0) }), from: "seed:1", now: 0)
    return instance
}

extension [MembershipDirective] {
    var sends: [(message: MembershipMessage, to: String)] {
        compactMap { if case .send(let message, let to) = $0 { (message, to) } else { nil } }
    }

    var changes: [(member: Member, previous: MemberState?)] {
        compactMap { if case .stateChanged(let member, let previous) = $0 { (member, previous) } else { nil } }
    }

    func pings(to address: String) -> [UInt64] {
        sends.compactMap { if case .ping(let sequence, _) = $0.message, $0.to == address { sequence } else { nil } }
    }

    var pingRequests: [(sequence: UInt64, target: MemberIdentity, to: String)] {
        sends.compactMap {
            if case .pingRequest(let sequence, let target, _) = $0.message { (sequence, target, $0.to) } else { nil }
        }
    }
}

extension MembershipMessage {
    var gossip: [Member] {
        switch self {
        case .ping(_, let gossip), .ack(_, _, _, let gossip), .pingRequest(_, _, let gossip),
            .indirectAck(_, _, _, let gossip), .nack(_, _, let gossip):
            gossip
        case .join(let member): [member]
        case .joinReply(let members): members
        }
    }
}

/// Ticks every 10 ms from `from` through `through`, collecting directives with their times.
func tickEvery10ms(
    _ instance: inout MembershipInstance, from: Int64, through: Int64
) -> [(at: Int64, directive: MembershipDirective)] {
    var out: [(Int64, MembershipDirective)] = []
    for now in stride(from: from, through: through, by: 10) {
        out += instance.tick(now: now).map { (now, $0) }
    }
    return out
}

// MARK: - Probing

@Suite struct MembershipProbingTests {
    @Test func pingIsAnsweredWithAnAckCarryingIdentityAndIncarnation() {
        var a = membership(knowing: ["b"])
        let directives = a.receive(.ping(sequence: 7, gossip: []), from: "b:1", now: 10)
        let acks = directives.sends.filter {
            if case .ack(7, memberID("a"), 0, _) = $0.message { $0.to == "b:1" } else { false }
        }
        #expect(acks.count == 1)
    }

    @Test func unansweredProbeGoesIndirectThenSuspectThenFailed() throws {
        var a = membership(knowing: ["b", "c", "d", "e"])
        let first = a.tick(now: 0).sends.filter { if case .ping = $0.message { true } else { false } }
        let probe = try #require(first.first { send in a.probes.values.contains { $0.target.address == send.to } })
        let target = nameOf(probe.to)
        guard case .ping(let sequence, _) = probe.message else { return }

        #expect(a.tick(now: 290).pingRequests.isEmpty)
        let requests = a.tick(now: 300).pingRequests
        #expect(requests.count == 3)
        #expect(requests.allSatisfy { $0.sequence == sequence && $0.target == memberID(target) && $0.to != probe.to })

        // Every intermediary nacks: nobody can reach the target, and the fault is not ours, so
        // the probe fails at the last nack, before its deadline, and local health stays at zero.
        var suspected: [MembershipDirective] = []
        for (index, request) in requests.enumerated() {
            let helper = nameOf(request.to)
            let answer = a.receive(
                .nack(sequence: sequence, from: memberID(helper), gossip: []), from: request.to, now: 400)
            if index < 2 { #expect(answer.changes.isEmpty) } else { suspected = answer }
        }
        #expect(suspected.changes.map(\.member) == [member(target, .suspect)])
        #expect(a.localHealthMultiplier == 0)
        // The suspect is told directly, so it can refute.
        let told = suspected.sends.filter { $0.to == probe.to && $0.message.gossip.first == member(target, .suspect) }
        #expect(told.count == 1)

        #expect(!a.tick(now: 2_390).changes.contains { $0.member.state == .failed })
        let failed = a.tick(now: 2_400).changes
        #expect(failed.map(\.member) == [member(target, .failed)])
        #expect(failed.first?.previous == .suspect)
        #expect(a.member(named: target)?.state == .failed)
        #expect(!a.liveMembers.contains { $0.name == target })
    }

    @Test func lateDirectAckDuringTheIndirectPhaseKeepsTheTargetAlive() throws {
        var a = membership(knowing: ["b", "c", "d"])
        let ping = try #require(a.tick(now: 0).sends.first { if case .ping = $0.message { true } else { false } })
        guard case .ping(let sequence, _) = ping.message else { return }
        let target = nameOf(ping.to)
        #expect(a.tick(now: 300).pingRequests.count == 2)
        _ = a.receive(
            .ack(sequence: sequence, from: memberID(target), incarnation: 0, gossip: []), from: ping.to, now: 450)
        var later = a.tick(now: 800)
        later += a.tick(now: 3_000)
        #expect(!later.changes.contains { $0.member.name == target })
        #expect(a.member(named: target)?.state == .alive)
    }

    @Test func indirectAckAnswersTheProbe() throws {
        var a = membership(knowing: ["b", "c"])
        let ping = try #require(a.tick(now: 0).sends.first { if case .ping = $0.message { true } else { false } })
        guard case .ping(let sequence, _) = ping.message else { return }
        let target = nameOf(ping.to)
        let request = try #require(a.tick(now: 300).pingRequests.first)
        _ = a.receive(
            .indirectAck(sequence: sequence, target: memberID(target), incarnation: 0, gossip: []), from: request.to,
            now: 400)
        #expect(a.probes[sequence] == nil)
        #expect(
            !tickEvery10ms(&a, from: 310, through: 900).contains {
                if case .stateChanged = $0.directive { true } else { false }
            })
    }

    @Test func intermediaryRelaysTheAckUnderTheProbersSequence() throws {
        var b = membership("b", knowing: ["a", "c"])
        let relayed = b.receive(.pingRequest(sequence: 5, target: memberID("c"), gossip: []), from: "a:1", now: 100)
        let ourSequence = try #require(relayed.pings(to: "c:1").first)
        let answer = b.receive(
            .ack(sequence: ourSequence, from: memberID("c"), incarnation: 2, gossip: []), from: "c:1", now: 150)
        let forwarded = answer.sends.filter {
            if case .indirectAck(5, memberID("c"), 2, _) = $0.message { $0.to == "a:1" } else { false }
        }
        #expect(forwarded.count == 1)
        // Nothing more is owed to the prober.
        #expect(b.tick(now: 1_000).sends.allSatisfy { if case .nack = $0.message { false } else { true } })
    }

    @Test func intermediaryNacksWhenTheTargetStaysSilent() {
        var b = membership("b", knowing: ["a", "c"])
        _ = b.receive(.pingRequest(sequence: 5, target: memberID("c"), gossip: []), from: "a:1", now: 100)
        let nacks = { (directives: [MembershipDirective]) in
            directives.sends.filter {
                if case .nack(5, memberID("b"), _) = $0.message { $0.to == "a:1" } else { false }
            }
        }
        #expect(nacks(b.tick(now: 339)).isEmpty)
        #expect(nacks(b.tick(now: 340)).count == 1)  // 80% of the 300 ms ping timeout
    }

    @Test func connectionFailureStartsTheIndirectProbeAtOnce() throws {
        var a = membership(knowing: ["b", "c", "d"])
        let ping = try #require(a.tick(now: 0).sends.first { if case .ping = $0.message { true } else { false } })
        let requests = a.connectionFailed(to: ping.to, now: 5).pingRequests
        #expect(requests.count == 2)
        // Not failed, not even suspect: the indirect path may still work.
        #expect(a.member(named: nameOf(ping.to))?.state == .alive)
    }

    @Test func undeliverableSendToAnUnprobedMemberStartsAnIndirectProbeAtOnce() {
        var a = membership(knowing: ["b", "c", "d"])
        let requests = a.connectionFailed(to: "c:1", now: 5).pingRequests
        #expect(requests.count == 2)
        #expect(requests.allSatisfy { $0.target == memberID("c") && $0.to != "c:1" })
        #expect(a.connectionFailed(to: "unknown:1", now: 6).isEmpty)
    }

    @Test func missingNacksRaiseLocalHealthWhichStretchesTimeoutsAndSuccessLowersIt() throws {
        var a = membership(knowing: ["b", "c", "d", "e"])
        let ping = try #require(a.tick(now: 0).sends.first { if case .ping = $0.message { true } else { false } })
        #expect(a.tick(now: 300).pingRequests.count == 3)
        _ = a.tick(now: 800)  // nobody nacked
        #expect(a.localHealthMultiplier == 3)
        let target = nameOf(ping.to)
        let deadline: Int64? = a.records[target]?.suspicionDeadline
        #expect(deadline == 8_800)  // 800 + 2 000 ms · (1 + LHM)

        // The probe sent in the same tick waits 4 × 300 ms before going indirect.
        let direct = a.probes.values.filter { if case .direct = $0.phase { true } else { false } }
        #expect(direct.map(\.deadline) == [2_000])  // 800 + 300 ms · (1 + LHM)

        // Successful probes bring it back down, one step each.
        let before = a.localHealthMultiplier
        let (sequence, probe) = try #require(a.probes.first)
        _ = a.receive(.ack(sequence: sequence, from: probe.target, incarnation: 0, gossip: []), from: "x", now: 900)
        #expect(a.localHealthMultiplier == before - 1)
    }
}

/// Test addresses are "<name>:1".
func nameOf(_ address: String) -> String { String(address.prefix { $0 != ":" }) }
