// MARK: - Messages

extension MembershipInstance {
    /// Handles one message from the peer reachable at `address` (its advertised "host:port",
    /// as the transport's handshake reports it); replies go there.
    public mutating func receive(_ message: MembershipMessage, from address: String, now: Int64)
        -> [MembershipDirective]
    {
        var directives: [MembershipDirective] = []
        if me.state == .left {
            // Still answer pings, with the leave, so nobody suspects a node that said goodbye.
            if case .ping(let sequence, _) = message {
                let ack = MembershipMessage.ack(
                    sequence: sequence, from: me.identity, incarnation: me.incarnation, gossip: [me])
                directives.append(.send(ack, to: address))
            }
            return directives
        }
        switch message {
        case .ping(let sequence, let news):
            apply(news, now: now, &directives)
            let ack = MembershipMessage.ack(
                sequence: sequence, from: me.identity, incarnation: me.incarnation, gossip: outgoingGossip(to: address))
            directives.append(.send(ack, to: address))
            // A ping names no sender. If we hold no live record for this address, the sender
            // believes we know it while we do not (we restarted, or declared it failed, while
            // its own news about itself had stopped spreading): nothing would ever tell us.
            // Ping it back: its ack carries its identity, and our gossip of it as failed, first
            // in the message, makes it refute.
            if record(atAddress: address)?.member.isLive != true {
                directives.append(.send(.ping(sequence: nextSequence(), gossip: outgoingGossip(to: address)), to: address))
            }

        case .ack(let sequence, let from, let incarnation, let news):
            apply(news, now: now, &directives)
            heardFrom(from, incarnation: incarnation, now: now, &directives)
            completeProbe(sequence: sequence, responder: from)
            if let relay = relays.removeValue(forKey: sequence) {
                relayAck(relay, responder: from, incarnation: incarnation, &directives)
            }

        case .pingRequest(let sequence, let target, let news):
            apply(news, now: now, &directives)
            receivePingRequest(sequence: sequence, target: target, from: address, now: now, &directives)

        case .indirectAck(let sequence, let target, let incarnation, let news):
            apply(news, now: now, &directives)
            heardFrom(target, incarnation: incarnation, now: now, &directives)
            completeProbe(sequence: sequence, responder: target)

        case .nack(let sequence, let from, let news):
            apply(news, now: now, &directives)
            if var probe = probes[sequence], case .indirect(let helpers, var nacks) = probe.phase,
                helpers[from.name] != nil
            {
                nacks.insert(from.name)
                probe.phase = .indirect(helpers: helpers, nacks: nacks)
                probes[sequence] = probe
                concludeIfEveryHelperNacked(sequence, now: now, &directives)
            }

        case .join(let joiner):
            apply(
                Member(identity: joiner.identity, state: .alive, incarnation: joiner.incarnation), now: now, &directives
            )
            directives.append(.send(.joinReply(members: members), to: address))

        case .joinReply(let table):
            apply(table, now: now, &directives)
            joining.joined = true
        }
        return directives
    }

    /// An answer from a member proves that life is alive at that incarnation. It counts like
    /// gossip, so it cannot clear a suspicion at the same incarnation (only a refutation can),
    /// but it does install a new generation, which is how a restart is noticed.
    mutating func heardFrom(
        _ identity: MemberIdentity, incarnation: UInt64, now: Int64, _ directives: inout [MembershipDirective]
    ) {
        guard identity.name != me.name else { return }
        apply(Member(identity: identity, state: .alive, incarnation: incarnation), now: now, &directives)
    }

    /// Ping the target on the prober's behalf, with a sequence of our own. The nack deadline is
    /// 80% of the unscaled ping timeout, so the nack reaches the prober before it gives up.
    mutating func receivePingRequest(
        sequence: UInt64, target: MemberIdentity, from origin: String, now: Int64,
        _ directives: inout [MembershipDirective]
    ) {
        if target.name == me.name {
            guard target.generation == me.identity.generation else { return }
            let ack = MembershipMessage.indirectAck(
                sequence: sequence, target: me.identity, incarnation: me.incarnation, gossip: outgoingGossip(to: origin)
            )
            directives.append(.send(ack, to: origin))
            return
        }
        // A request about an older life than we know of is stale; that life is gone.
        if let known = records[target.name]?.member.identity, known.generation > target.generation { return }
        let ourSequence = nextSequence()
        relays[ourSequence] = Relay(
            origin: origin, originSequence: sequence, target: target,
            deadline: now + millis(settings.pingTimeout) * 4 / 5)
        let ping = MembershipMessage.ping(sequence: ourSequence, gossip: outgoingGossip(to: target.address))
        directives.append(.send(ping, to: target.address))
    }

    mutating func relayAck(
        _ relay: Relay, responder: MemberIdentity, incarnation: UInt64, _ directives: inout [MembershipDirective]
    ) {
        guard responder.name == relay.target.name, responder.generation >= relay.target.generation else { return }
        let ack = MembershipMessage.indirectAck(
            sequence: relay.originSequence, target: responder, incarnation: incarnation,
            gossip: outgoingGossip(to: relay.origin))
        directives.append(.send(ack, to: relay.origin))
    }
}
