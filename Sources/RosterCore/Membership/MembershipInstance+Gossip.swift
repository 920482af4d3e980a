import HeapModule

// MARK: - Applying news

extension MembershipInstance {
    /// Applies one piece of news about a member, by the precedence of `Member.supersedes`.
    /// News about this node itself may make it refute; it never changes this node's state.
    mutating func apply(_ update: Member, now: Int64, _ directives: inout [MembershipDirective]) {
        if update.name == me.name {
            hearAboutMyself(update)
            return
        }
        guard let current = records[update.name] else {
            records[update.name] = MemberRecord(
                member: update, since: now, suspicionDeadline: suspicionDeadline(for: update, now: now))
            gossip.enqueue(update)
            if update.isLive { scheduleProbe(of: update.name) }
            directives.append(.stateChanged(update, previous: nil))
            return
        }
        guard update.supersedes(current.member) else { return }
        let previous = current.member
        let newLife = previous.identity != update.identity
        let sameState = previous.state == update.state && !newLife
        records[update.name] = MemberRecord(
            member: update, since: sameState ? current.since : now,
            suspicionDeadline: suspicionDeadline(for: update, now: now))
        gossip.enqueue(update)
        if update.isLive, !previous.isLive || newLife { scheduleProbe(of: update.name) }
        if !update.isLive { probes = probes.filter { $0.value.target.name != update.name } }
        if !sameState { directives.append(.stateChanged(update, previous: previous.state)) }
    }

    mutating func apply(_ updates: [Member], now: Int64, _ directives: inout [MembershipDirective]) {
        for update in updates { apply(update, now: now, &directives) }
    }

    /// A suspect has this long to refute. Every node runs its own timer from when it first
    /// hears of the suspicion; whichever fires first gossips `failed`.
    func suspicionDeadline(for member: Member, now: Int64) -> Int64? {
        member.state == .suspect ? now + scaled(settings.suspicionTimeout) : nil
    }

    /// Self-refutation: someone suspects this life of this node, or declared it failed, at an
    /// incarnation at least ours. Raise the incarnation past it and gossip alive, which beats
    /// the accusation everywhere. Having to refute is a sign of local trouble (Lifeguard).
    mutating func hearAboutMyself(_ update: Member) {
        guard me.state != .left, update.identity.generation == me.identity.generation else { return }
        switch update.state {
        case .suspect, .failed:
            guard update.incarnation >= me.incarnation else { return }
            me.incarnation = update.incarnation &+ 1
            localHealth.raise()
            gossip.enqueue(me)
        case .alive, .left:
            // Only this node raises its incarnation or leaves, so such news is an echo of us.
            break
        }
    }
}

// MARK: - Spreading news

extension MembershipInstance {
    /// The gossip to piggyback on a message to `address`. If we think the receiver is suspect
    /// or failed, that goes first: it is the one node that can refute it.
    mutating func outgoingGossip(to address: String) -> [Member] {
        var out: [Member] = []
        var already: NodeID?
        if let target = record(atAddress: address), target.member.state == .suspect || target.member.state == .failed {
            out.append(target.member)
            already = target.member.name
        }
        let room = max(0, settings.maxGossipPerMessage - out.count)
        out += gossip.take(max: room, limit: retransmitLimit, excluding: already)
        return out
    }

    /// About `λ · ln(n + 1)` sends per update, n counting live members: enough for an epidemic
    /// to reach everyone with high probability, few enough to keep messages small.
    var retransmitLimit: Int {
        let live = records.liveNames.count + 1
        let limit = (settings.retransmitMultiplier * naturalLog(Double(live + 1))).rounded(.up)
        return limit < 1 ? 1 : (limit > 1_000 ? 1_000 : Int(limit))
    }
}

/// ln(x) for x ≥ 1 without Foundation: halve down to [1, 2], then the atanh series.
private func naturalLog(_ value: Double) -> Double {
    guard value > 1, value.isFinite else { return 0 }
    var x = value
    var halvings = 0.0
    while x > 2 {
        x /= 2
        halvings += 1
    }
    let y = (x - 1) / (x + 1)
    var term = y
    var sum = 0.0
    var divisor = 1.0
    for _ in 0..<30 {
        sum += term / divisor
        term *= y * y
        divisor += 2
    }
    return halvings * 0.693_147_180_559_945_3 + 2 * sum
}

// MARK: - Gossip queue

/// Updates waiting to be piggybacked. Each name has at most one entry, the latest news.
/// Least-sent entries go first and, among those, the most recent.
///
/// Entries sit in a heap ordered that way, so a message takes its updates in O(k log n)
/// instead of sorting the whole queue: a joining node queues news of every member, and at
/// 1,000 members a sort per message dominated the cost of gossip. A re-enqueued or removed
/// name leaves its old heap key behind; keys that no longer match their entry are skipped
/// when popped, and the heap is rebuilt when they outnumber the live ones.
struct GossipQueue: Sendable {
    struct Entry: Sendable {
        var member: Member
        var sent: Int
        var order: UInt64
    }

    /// A heap key: fewest sends first, then the newest.
    private struct Key: Comparable, Sendable {
        var sent: Int
        var order: UInt64
        var name: NodeID

        static func < (a: Key, b: Key) -> Bool { (a.sent, b.order) < (b.sent, a.order) }
    }

    private(set) var entries: [NodeID: Entry] = [:]
    private var heap = Heap<Key>()
    private var counter: UInt64 = 0

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    mutating func enqueue(_ member: Member) {
        counter &+= 1
        entries[member.name] = Entry(member: member, sent: 0, order: counter)
        heap.insert(Key(sent: 0, order: counter, name: member.name))
        compactIfStale()
    }

    mutating func remove(_ name: NodeID) {
        entries[name] = nil
        compactIfStale()
    }

    /// Takes up to `max` updates for one message, counting the send; an update sent `limit`
    /// times leaves the queue.
    mutating func take(max: Int, limit: Int, excluding: NodeID? = nil) -> [Member] {
        guard max > 0 else { return [] }
        var chosen: [Member] = []
        // Keys go back only after the loop, so no entry is taken twice for one message.
        var putBack: [Key] = []
        while chosen.count < max, let key = heap.popMin() {
            guard let entry = entries[key.name], entry.order == key.order, entry.sent == key.sent else { continue }
            if key.name == excluding {
                putBack.append(key)
                continue
            }
            chosen.append(entry.member)
            if entry.sent + 1 >= limit {
                entries[key.name] = nil
            } else {
                entries[key.name]?.sent += 1
                putBack.append(Key(sent: entry.sent + 1, order: entry.order, name: key.name))
            }
        }
        heap.insert(contentsOf: putBack)
        return chosen
    }

    private mutating func compactIfStale() {
        guard heap.count > 2 * entries.count + 64 else { return }
        heap = Heap(entries.map { Key(sent: $0.value.sent, order: $0.value.order, name: $0.key) })
    }
}
