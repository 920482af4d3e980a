// MARK: - Joining and leaving

extension MembershipInstance {
    /// Asks every seed to let this node in; one answer is enough. Until one comes, `tick`
    /// asks again with exponential backoff, forever: the seeds may simply not be up yet.
    /// This node's own address is dropped from `seeds`; with no seed left, it is a cluster
    /// of one, already joined.
    public mutating func join(seeds: [String], now: Int64) -> [MembershipDirective] {
        guard me.state != .left else { return [] }
        var unique: [String] = []
        for seed in seeds where seed != me.identity.address && !unique.contains(seed) { unique.append(seed) }
        joining.seeds = unique
        guard !unique.isEmpty else {
            joining.joined = true
            return []
        }
        joining.joined = false
        joining.backoff = millis(settings.joinBackoffInitial)
        joining.nextAttemptAt = now + joining.backoff
        return joinRequests()
    }

    /// Graceful leave: this life becomes `left` at a higher incarnation, which is final, and
    /// every live member is told directly. Afterwards the instance only answers pings, with
    /// the leave, so that peers record `left`, not `failed`.
    public mutating func leave(now: Int64) -> [MembershipDirective] {
        guard me.state != .left else { return [] }
        let previous = me.state
        me.incarnation &+= 1
        me.state = .left
        gossip.enqueue(me)
        var directives: [MembershipDirective] = [.stateChanged(me, previous: previous)]
        for name in records.liveNames {
            guard let address = records[name]?.member.identity.address else { continue }
            directives.append(.send(.ping(sequence: nextSequence(), gossip: [me]), to: address))
        }
        probes.removeAll()
        relays.removeAll()
        joining.joined = true
        return directives
    }

    func joinRequests() -> [MembershipDirective] {
        joining.seeds.map { .send(.join(me), to: $0) }
    }

    /// Resends the join when its backoff has passed. A joined node whose every peer has failed
    /// or left may be the one that was cut off, so it goes back to asking its seeds.
    mutating func retryJoin(now: Int64, _ directives: inout [MembershipDirective]) {
        guard !joining.seeds.isEmpty else { return }
        if joining.joined, records.liveNames.isEmpty {
            joining.joined = false
            joining.backoff = millis(settings.joinBackoffInitial)
            joining.nextAttemptAt = now
        }
        guard !joining.joined, now >= joining.nextAttemptAt else { return }
        directives += joinRequests()
        joining.backoff = min(joining.backoff * 2, millis(settings.joinBackoffMax))
        joining.nextAttemptAt = now + joining.backoff
    }
}
