// MARK: - Time

extension MembershipInstance {
    /// Drives everything time-based: probe timeouts (direct, then indirect, then suspect),
    /// suspicion timeouts, relayed pings that go unanswered, the next probe round, eager gossip,
    /// join retries, reconnect attempts and forgetting long-gone members.
    ///
    /// Call it every 50 to 100 ms; coarser ticks add their period to each timeout.
    public mutating func tick(now: Int64) -> [MembershipDirective] {
        guard me.state != .left else { return [] }
        var directives: [MembershipDirective] = []
        expireProbes(now: now, &directives)
        expireRelays(now: now, &directives)
        expireSuspicions(now: now, &directives)
        forgetDeparted(now: now)
        retryJoin(now: now, &directives)
        probeRound(now: now, &directives)
        gossipRound(now: now, &directives)
        reconnectRound(now: now, &directives)
        return directives
    }

    /// The shell could not deliver to `address` (connection refused, reset, timed out).
    ///
    /// For a probe still waiting on its direct ping this counts as the missed ack, so the
    /// indirect probe starts now instead of after `pingTimeout`; a live member without a probe
    /// under way gets one, already past its direct phase. It never marks anyone failed by
    /// itself: the indirect path may still work. A relayed ping that cannot be delivered is
    /// nacked to its prober at once; an intermediary that cannot be reached is not expected to
    /// nack, so it does not count against this node's local health.
    public mutating func connectionFailed(to address: String, now: Int64) -> [MembershipDirective] {
        guard me.state != .left else { return [] }
        var directives: [MembershipDirective] = []
        for sequence in probes.keys.sorted() {
            guard var probe = probes[sequence] else { continue }
            switch probe.phase {
            case .direct where probe.target.address == address:
                probe.deadline = min(probe.deadline, now)
            case .indirect(var helpers, let nacks):
                guard let name = helpers.first(where: { $0.value == address && !nacks.contains($0.key) })?.key else {
                    continue
                }
                helpers[name] = nil
                probe.phase = .indirect(helpers: helpers, nacks: nacks)
                probes[sequence] = probe
                concludeIfEveryHelperNacked(sequence, now: now, &directives)
                continue
            default:
                continue
            }
            probes[sequence] = probe
        }
        for sequence in relays.keys.sorted() where relays[sequence]?.target.address == address {
            relays[sequence]?.deadline = now
        }
        // Any undeliverable send to a live member (a gossip push, an ack) is as telling as a
        // missed probe: probe it now instead of waiting for its turn in the round robin.
        if let target = record(atAddress: address)?.member, target.isLive,
            !probes.values.contains(where: { $0.target.name == target.name })
        {
            probes[nextSequence()] = Probe(target: target.identity, phase: .direct, deadline: now)
        }
        expireProbes(now: now, &directives)
        expireRelays(now: now, &directives)
        return directives
    }
}

// MARK: - Probing

extension MembershipInstance {
    /// One probe per (LHM-scaled) probe interval, to the next live member in the round robin.
    mutating func probeRound(now: Int64, _ directives: inout [MembershipDirective]) {
        let due = nextProbeAt ?? now
        guard now >= due else { return }
        let interval = scaled(settings.probeInterval)
        nextProbeAt = due + interval > now ? due + interval : now + interval
        guard let target = nextProbeTarget() else { return }
        let sequence = nextSequence()
        let address = target.identity.address
        probes[sequence] = Probe(target: target.identity, phase: .direct, deadline: now + scaled(settings.pingTimeout))
        directives.append(.send(.ping(sequence: sequence, gossip: outgoingGossip(to: address)), to: address))
    }

    /// SWIM's randomized round robin: every live member is probed once per pass over a shuffled
    /// list, which bounds the time until a dead member is probed. New members go in at a random
    /// place in the rest of the current pass.
    mutating func nextProbeTarget() -> Member? {
        var reshuffled = false
        while true {
            if probeIndex >= probeOrder.count {
                if reshuffled { return nil }
                probeOrder = records.liveNames.shuffled(using: &rng)
                probeIndex = 0
                reshuffled = true
                continue
            }
            let name = probeOrder[probeIndex]
            probeIndex += 1
            if let record = records[name], record.member.isLive,
                !probes.values.contains(where: { $0.target.name == name })
            {
                return record.member
            }
        }
    }

    mutating func scheduleProbe(of name: NodeID) {
        guard !probeOrder[probeIndex...].contains(name) else { return }
        probeOrder.insert(name, at: Int.random(in: probeIndex...probeOrder.count, using: &rng))
    }

    /// Direct ping timed out: ask k alive members to ping the target. Indirect probe timed out:
    /// suspect the target, and tell it directly, since it is the one that can refute.
    mutating func expireProbes(now: Int64, _ directives: inout [MembershipDirective]) {
        for sequence in probes.keys.sorted() {
            guard let probe = probes[sequence], probe.deadline <= now else { continue }
            switch probe.phase {
            case .direct:
                let candidates = records.liveNames.filter { $0 != probe.target.name && records[$0]?.member.state == .alive }
                var helpers: [NodeID: String] = [:]
                for name in pick(settings.indirectProbeCount, from: candidates) {
                    guard let address = records[name]?.member.identity.address else { continue }
                    helpers[name] = address
                    let request = MembershipMessage.pingRequest(
                        sequence: sequence, target: probe.target, gossip: outgoingGossip(to: address))
                    directives.append(.send(request, to: address))
                }
                probes[sequence] = Probe(
                    target: probe.target, phase: .indirect(helpers: helpers, nacks: []),
                    deadline: now + scaled(settings.indirectPingTimeout))
            case .indirect(let helpers, let nacks):
                probes[sequence] = nil
                // Lifeguard: intermediaries that did not even nack suggest our own network is
                // the problem. With nobody to ask, a failed probe says nothing about us.
                localHealth.raise(by: helpers.keys.filter { !nacks.contains($0) }.count)
                suspect(probe.target, now: now, &directives)
            }
        }
    }

    /// Every intermediary asked has nacked, or turned out unreachable: nobody else can reach
    /// the target either, so the probe fails now instead of at its deadline. The local health
    /// multiplier is untouched, since everyone who could vouch for us did.
    mutating func concludeIfEveryHelperNacked(
        _ sequence: UInt64, now: Int64, _ directives: inout [MembershipDirective]
    ) {
        guard let probe = probes[sequence], case .indirect(let helpers, let nacks) = probe.phase,
            helpers.keys.allSatisfy(nacks.contains)
        else { return }
        probes[sequence]?.deadline = now
        expireProbes(now: now, &directives)
    }

    mutating func suspect(_ target: MemberIdentity, now: Int64, _ directives: inout [MembershipDirective]) {
        guard let current = records[target.name]?.member, current.identity.generation == target.generation,
            current.state == .alive
        else { return }
        apply(
            Member(identity: current.identity, state: .suspect, incarnation: current.incarnation), now: now, &directives
        )
        let address = current.identity.address
        directives.append(.send(.ping(sequence: nextSequence(), gossip: outgoingGossip(to: address)), to: address))
    }

    /// A probe is answered, directly or through an intermediary, by the life it targeted or a
    /// newer one. Answers from older lives are ignored.
    mutating func completeProbe(sequence: UInt64, responder: MemberIdentity) {
        guard let probe = probes[sequence], probe.target.name == responder.name,
            responder.generation >= probe.target.generation
        else { return }
        probes[sequence] = nil
        localHealth.lower()
    }

    /// Relayed pings whose target did not answer in time: nack to the prober.
    mutating func expireRelays(now: Int64, _ directives: inout [MembershipDirective]) {
        for sequence in relays.keys.sorted() {
            guard let relay = relays[sequence], relay.deadline <= now else { continue }
            relays[sequence] = nil
            let nack = MembershipMessage.nack(
                sequence: relay.originSequence, from: me.identity, gossip: outgoingGossip(to: relay.origin))
            directives.append(.send(nack, to: relay.origin))
        }
    }

    /// Suspects that did not refute in time become failed; the change is gossiped.
    mutating func expireSuspicions(now: Int64, _ directives: inout [MembershipDirective]) {
        for name in records.suspectNames {
            guard let record = records[name], let deadline = record.suspicionDeadline, deadline <= now else { continue }
            let member = record.member
            apply(
                Member(identity: member.identity, state: .failed, incarnation: member.incarnation), now: now,
                &directives)
        }
    }

    /// Failed and left members are kept for `retention`, so late gossip cannot revive them.
    mutating func forgetDeparted(now: Int64) {
        let retention = millis(settings.retention)
        for name in records.departedNames {
            guard let record = records[name], now - record.since >= retention else { continue }
            records[name] = nil
            gossip.remove(name)
        }
    }
}

// MARK: - Eager gossip and reconnects

extension MembershipInstance {
    /// While there is fresh news, push it to a few random live members every gossip interval,
    /// as untracked pings; their acks carry their news back. Piggybacking on probes alone
    /// would need several probe intervals to reach everyone.
    mutating func gossipRound(now: Int64, _ directives: inout [MembershipDirective]) {
        let due = nextGossipAt ?? now
        guard now >= due else { return }
        nextGossipAt = now + millis(settings.gossipInterval)
        guard !gossip.isEmpty else { return }
        for name in pick(settings.gossipFanout, from: records.liveNames) {
            guard let address = records[name]?.member.identity.address else { continue }
            let news = outgoingGossip(to: address)
            if news.isEmpty { break }
            directives.append(.send(.ping(sequence: nextSequence(), gossip: news), to: address))
        }
    }

    /// Every reconnect interval, ping one random failed member with its own failed record.
    /// If it was only cut off, it refutes and the two sides of a healed partition merge again.
    mutating func reconnectRound(now: Int64, _ directives: inout [MembershipDirective]) {
        let interval = millis(settings.reconnectInterval)
        let due = nextReconnectAt ?? now + interval
        nextReconnectAt = due
        guard now >= due else { return }
        nextReconnectAt = now + interval
        guard let name = pick(1, from: records.departedNames.filter { records[$0]?.member.state == .failed }).first,
            let address = records[name]?.member.identity.address
        else { return }
        directives.append(.send(.ping(sequence: nextSequence(), gossip: outgoingGossip(to: address)), to: address))
    }
}
