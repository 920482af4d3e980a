import RosterCore

/// What the virtual clock runs.
enum SimEvent {
    /// A message arriving at `to`, if the life it was sent to is still running.
    case deliver(from: Int, to: Int, toGeneration: UInt64, payload: Payload)
    /// The transport tells `node` it could not reach `address` (a refused connect).
    case connectionFailed(node: Int, generation: UInt64, address: String)
    case membershipTick(node: Int, generation: UInt64)
    case antiEntropy(node: Int, generation: UInt64)
    case rumorFlush(node: Int, generation: UInt64)
    case renewalFlush(node: Int, generation: UInt64)
    case fsyncDone(node: Int, generation: UInt64)
    case collectTombstones(node: Int, generation: UInt64)
    case clientOperation
    case fault
    case endFault(FaultEpisode)
    case restart(node: Int)
    case heal
    case checkConvergence

    enum Payload {
        case membership([UInt8])
        case replication([UInt8])
    }
}

/// A deterministic cluster: N nodes running the real protocol cores on one virtual clock, a
/// network that loses, delays, reorders, duplicates and cuts messages, crashes that lose what
/// was not fsync'd, and clients whose acknowledged writes are all remembered for the checks.
public final class Simulation {
    public let config: SimConfig
    public internal(set) var trace: SimTrace
    var queue = EventQueue<SimEvent>()
    public internal(set) var now: Int64 = 0
    var nodes: [SimNode?]
    var disks: [SimDisk]
    var generations: [UInt64]
    var clocks: [SimClock]
    let names: [NodeID]
    var network: SimNetwork
    var faultRNG: SplitMix64
    var networkRNG: SplitMix64
    var workloadRNG: SplitMix64
    var nodeSeeds: SplitMix64
    var history = History()
    var pendingAcks: [[(seq: UInt64, write: AckedWrite)]]
    public internal(set) var traffic: [TrafficCounters]
    var bounds = BoundsWatch()
    var inFlightMessages = 0
    var healed = false
    var healedAt: Int64 = 0
    var convergedAt: Int64?
    /// Set by the scale benchmark, which runs membership without faults and wants no client.
    var runsWorkload = true
    /// Observer for the scale benchmark: called with (node, records, rumor hops left) whenever
    /// a node merges records that changed its state; hops are nil for anti-entropy.
    var onApplied: ((Int, [Record], UInt8?) -> Void)?

    public init(config: SimConfig, traceCapacity: Int = 60) {
        self.config = config
        trace = SimTrace(capacity: traceCapacity)
        let width = String(max(config.nodeCount - 1, 1)).count
        names = (0..<config.nodeCount).map { i in
            let digits = String(i)
            return "n" + String(repeating: "0", count: width - digits.count) + digits
        }
        nodes = Array(repeating: nil, count: config.nodeCount)
        disks = Array(repeating: SimDisk(), count: config.nodeCount)
        generations = Array(repeating: 0, count: config.nodeCount)
        pendingAcks = Array(repeating: [], count: config.nodeCount)
        traffic = Array(repeating: TrafficCounters(), count: config.nodeCount)
        network = SimNetwork(
            nodeCount: config.nodeCount, delay: config.delayMillis, lossRate: config.lossRate, duplicateRate: config.duplicateRate)
        var root = SplitMix64(seed: config.seed)
        faultRNG = SplitMix64(seed: root.next())
        networkRNG = SplitMix64(seed: root.next())
        workloadRNG = SplitMix64(seed: root.next())
        nodeSeeds = SplitMix64(seed: root.next())
        var clockRNG = SplitMix64(seed: root.next())
        clocks = (0..<config.nodeCount).map { _ in
            SimClock(
                skewMillis: Int64.random(in: -config.maxSkewMillis...config.maxSkewMillis, using: &clockRNG),
                driftPPM: Int64.random(in: -config.maxDriftPPM...config.maxDriftPPM, using: &clockRNG))
        }
    }

    func address(_ index: Int) -> String { "\(names[index]):8301" }

    func index(ofAddress address: String) -> Int? {
        index(ofName: String(address.prefix { $0 != ":" }))
    }

    func index(ofName name: NodeID) -> Int? {
        guard name.first == "n", let i = Int(name.dropFirst()), i >= 0, i < names.count, names[i] == name else { return nil }
        return i
    }

    var upIndices: [Int] { nodes.indices.filter { nodes[$0] != nil } }

    // MARK: - Lives of nodes

    /// Starts a new life of node `i` from its disk, joining every other node as its seeds
    /// (as the cluster configs list every other node under `join`).
    func start(_ i: Int) {
        generations[i] += 1
        var node = SimNode(
            index: i, name: names[i], address: address(i), generation: generations[i], clock: clocks[i], disk: disks[i],
            membershipSettings: config.membership, replicationSettings: config.replication, seed: nodeSeeds.next(), now: now)
        let others = names.indices.filter { $0 != i }
        let seeds = others.prefix(config.joinSeeds ?? others.count).map(address)
        let directives = node.membership.join(seeds: seeds, now: clocks[i].monotonic(now))
        nodes[i] = node
        let g = generations[i]
        let phase = { (period: Int64) in Int64.random(in: 0..<period, using: &self.faultRNG) }
        queue.schedule(.membershipTick(node: i, generation: g), at: now + phase(config.membershipTickMillis))
        queue.schedule(.antiEntropy(node: i, generation: g), at: now + phase(config.antiEntropyMillis))
        queue.schedule(.collectTombstones(node: i, generation: g), at: now + phase(config.collectionMillis))
        perform(directives, at: i)
    }

    /// `kill -9` with power loss: the process and its unflushed log are gone; the disk stays.
    func crash(_ i: Int) {
        guard nodes[i] != nil else { return }
        let lost = nodes[i]?.wal.queued ?? 0
        nodes[i] = nil
        let unacknowledged = pendingAcks[i].count
        pendingAcks[i] = []
        trace.add(now, "\(names[i]) crashes: \(lost) log entries not fsync'd are lost, \(unacknowledged) writes never acknowledged")
    }

    // MARK: - Running

    /// Runs events until `deadline` or until `stop` returns true.
    func run(until deadline: Int64, stop: () -> Bool = { false }) {
        while let next = queue.nextTime, next <= deadline {
            if stop() { return }
            guard let (at, event) = queue.pop() else { return }
            now = at
            handle(event)
        }
        now = max(now, deadline)
    }

    func handle(_ event: SimEvent) {
        switch event {
        case .deliver(let from, let to, let generation, let payload):
            inFlightMessages -= 1
            guard nodes[to] != nil, generations[to] == generation else { return }
            deliver(payload, from: from, to: to)
        case .connectionFailed(let i, let g, let address):
            let directives = mutateNode(i, generation: g) { node -> [MembershipDirective] in
                guard node.membership.knowsMember(atAddress: address) else { return [] }
                return node.membership.connectionFailed(to: address, now: clocks[i].monotonic(now))
            }
            perform(directives ?? [], at: i)
        case .membershipTick(let i, let g):
            guard live(i, g) != nil else { return }
            queue.schedule(.membershipTick(node: i, generation: g), at: now + config.membershipTickMillis)
            tickMembership(i)
        case .antiEntropy(let i, let g):
            guard live(i, g) != nil else { return }
            queue.schedule(.antiEntropy(node: i, generation: g), at: now + config.antiEntropyMillis)
            antiEntropy(i)
        case .rumorFlush(let i, let g):
            let directives = mutateNode(i, generation: g) { node -> [ReplicationDirective] in
                node.rumorFlushScheduled = false
                let records = node.rumorOutbox
                node.rumorOutbox = []
                return records.isEmpty ? [] : node.replicator.rumor(records, peers: node.livePeers, using: &node.rng)
            }
            perform(directives ?? [], at: i)
        case .renewalFlush(let i, let g):
            let directives = mutateNode(i, generation: g) { node -> [ReplicationDirective] in
                node.renewalFlushScheduled = false
                defer { node.renewalOutbox = [] }
                return node.replicator.broadcast(node.renewalOutbox, peers: node.livePeers)
            }
            perform(directives ?? [], at: i)
        case .fsyncDone(let i, let g):
            guard let (again, durable) = mutateNode(i, generation: g, { node in
                (node.wal.completeFlush(into: &disks[i]), node.wal.durableSeq)
            }) else { return }
            if again { scheduleFsync(i) }
            acknowledge(upTo: durable, at: i)
        case .collectTombstones(let i, let g):
            guard let collected = mutateNode(i, generation: g, { node in
                node.collectTombstones(graceMillis: config.tombstoneGraceMillis, disk: &disks[i], now: now)
            }) else { return }
            queue.schedule(.collectTombstones(node: i, generation: g), at: now + config.collectionMillis)
            for record in collected { history.collected[record.key, default: []].append(record.clock) }
            if !collected.isEmpty { trace.add(now, "\(names[i]) collects \(collected.count) tombstones") }
        case .clientOperation:
            clientOperation()
        case .fault:
            injectFault()
        case .endFault(let episode):
            endFault(episode)
        case .restart(let i):
            guard nodes[i] == nil else { return }
            trace.add(now, "\(names[i]) restarts as generation \(generations[i] + 1)")
            start(i)
        case .heal:
            heal()
        case .checkConvergence:
            checkConvergence()
        }
        bounds.observe(self)
    }

    /// The node's current life if it is `generation`: timers of an earlier life are void.
    func live(_ i: Int, _ generation: UInt64) -> SimNode? {
        guard let node = nodes[i], node.generation == generation else { return nil }
        return node
    }

    /// Runs `body` on node `i` in place (on its life `generation`, if given); nil if it is down.
    ///
    /// Copying a node out of `nodes` and writing it back would leave its dictionaries shared
    /// for the duration, so the first mutation of each would copy it whole: at a few hundred
    /// records that copying was most of a large simulation's time. `body` must not touch
    /// `nodes` (exclusive access traps if it does).
    @discardableResult
    func mutateNode<T>(_ i: Int, generation: UInt64? = nil, _ body: (inout SimNode) -> T) -> T? {
        guard let node = nodes[i], generation == nil || node.generation == generation else { return nil }
        return body(&nodes[i]!)
    }

    func scheduleFsync(_ i: Int) {
        let latency = Int64.random(in: config.fsyncMillis, using: &networkRNG)
        queue.schedule(.fsyncDone(node: i, generation: generations[i]), at: now + latency)
    }

    // MARK: - ClusterNode's loops

    /// `ClusterNode.tickMembership`.
    func tickMembership(_ i: Int) {
        guard let directives = mutateNode(i, { $0.membership.tick(now: clocks[i].monotonic(now)) }) else { return }
        perform(directives, at: i)
        let syncNow = mutateNode(i) { node in
            guard !node.caughtUp && !node.firstSyncStarted && !node.livePeers.isEmpty else { return false }
            node.firstSyncStarted = true
            return true
        }
        if syncNow == true { antiEntropy(i) }
    }

    /// `ClusterNode.antiEntropy` with `Registry.startAntiEntropy`.
    func antiEntropy(_ i: Int) {
        let directives = mutateNode(i) { node -> [ReplicationDirective] in
            let peers = node.livePeers
            guard !peers.isEmpty else {
                if node.membership.memberCount == 1 { node.caughtUp = true }
                return []
            }
            var rng = SplitMix64(seed: node.rng.next())
            return node.replicator.startAntiEntropy(state: node.state, lastSync: node.lastSync, peers: peers, using: &rng)
        }
        perform(directives ?? [], at: i)
    }

    /// `ClusterNode.handle(.received)`.
    func deliver(_ payload: SimEvent.Payload, from: Int, to i: Int) {
        guard let node = nodes[i] else { return }
        switch payload {
        case .membership(let bytes):
            guard let message = try? MembershipMessage.decode(bytes: bytes) else {
                fatalError("seed \(config.seed): a membership message failed to decode")
            }
            let directives = mutateNode(i) { $0.membership.receive(message, from: address(from), now: clocks[i].monotonic(now)) }
            perform(directives ?? [], at: i)
        case .replication(let bytes):
            guard let message = try? ReplicationMessage.decode(bytes) else {
                fatalError("seed \(config.seed): a replication message failed to decode")
            }
            guard case .digest = message else {
                perform(node.replicator.receive(message, from: names[from], state: node.state), at: i)
                return
            }
            let outcome = mutateNode(i) { node in
                let (directives, inSync, dropped) = node.handleDigest(message, from: names[from], disk: &disks[i], now: now)
                if inSync && !node.caughtUp { node.caughtUp = true }
                return (directives, dropped)
            }
            guard let (directives, dropped) = outcome else { return }
            if dropped > 0 { trace.add(now, "\(names[i]) is stale behind \(names[from])'s horizon: reset, dropped \(dropped)") }
            perform(directives, at: i)
        }
    }

    // MARK: - Directives

    func perform(_ directives: [MembershipDirective], at i: Int) {
        for directive in directives {
            switch directive {
            case .send(let message, let to):
                guard let j = index(ofAddress: to) else { continue }
                send(.membership(message.encoded), from: i, to: j, address: to)
            case .stateChanged(let member, let previous):
                if member.name != names[i] && (member.state == .failed || previous == .failed || member.state == .left) {
                    trace.add(now, "\(names[i]) sees \(member.identity) \(previous?.rawValue ?? "new") → \(member.state.rawValue)")
                }
            }
        }
    }

    /// `ClusterNode.perform(_: [ReplicationDirective])`.
    func perform(_ directives: [ReplicationDirective], at i: Int) {
        for directive in directives {
            guard nodes[i] != nil else { return }
            switch directive {
            case .send(let message, let peer):
                guard let address = nodes[i]?.membership.member(named: peer)?.identity.address, let j = index(ofAddress: address)
                else { continue }
                send(.replication(message.encoded()), from: i, to: j, address: address)
            case .renew(let renewals):
                mutateNode(i) { $0.applyRenewals(renewals) }
            case .apply(let records, let from, let hops):
                guard let (changed, startFlush, forwards) = mutateNode(i, { node in
                    let (changed, startFlush) = node.applyRemote(records, now: now)
                    var forwards: [ReplicationDirective] = []
                    if let hops, !changed.isEmpty {
                        forwards = node.replicator.forward(changed, hops: hops, except: from, peers: node.livePeers, using: &node.rng)
                    }
                    return (changed, startFlush, forwards)
                }) else { return }
                if startFlush { scheduleFsync(i) }
                if !changed.isEmpty { onApplied?(i, changed, hops) }
                perform(forwards, at: i)
            }
        }
    }

    /// Puts a message on the wire: a refused connect if the receiver is down, nothing if a cut
    /// or loss takes it, otherwise one delivery (two if duplicated) after a random delay.
    func send(_ payload: SimEvent.Payload, from i: Int, to j: Int, address: String) {
        let size: Int
        switch payload {
        case .membership(let bytes):
            size = bytes.count + 6
            traffic[i].membershipBytes += size
        case .replication(let bytes):
            size = bytes.count + 6
            traffic[i].replicationBytes += size
        }
        traffic[i].messages += 1
        guard nodes[j] != nil else {
            let delay = Int64.random(in: network.delay, using: &networkRNG)
            queue.schedule(.connectionFailed(node: i, generation: generations[i], address: address), at: now + delay)
            return
        }
        guard network.passes(from: i, to: j) else { return }
        if network.lossRate > 0, Double.random(in: 0..<1, using: &networkRNG) < network.lossRate { return }
        let copies = network.duplicateRate > 0 && Double.random(in: 0..<1, using: &networkRNG) < network.duplicateRate ? 2 : 1
        for _ in 0..<copies {
            let delay = Int64.random(in: network.delay, using: &networkRNG)
            inFlightMessages += 1
            queue.schedule(.deliver(from: i, to: j, toGeneration: generations[j], payload: payload), at: now + delay)
        }
    }

    /// Schedules a rumor flush at once, if one is not pending already: the node sends a rumor
    /// as soon as a write lands, and writes landing before that send go out with it.
    func scheduleRumorFlush(_ i: Int) {
        guard let node = nodes[i], !node.rumorFlushScheduled else { return }
        nodes[i]!.rumorFlushScheduled = true
        queue.schedule(.rumorFlush(node: i, generation: node.generation), at: now)
    }

    func scheduleRenewalFlush(_ i: Int) {
        guard let node = nodes[i], !node.renewalFlushScheduled else { return }
        nodes[i]!.renewalFlushScheduled = true
        let period = config.renewalBatchMillis
        queue.schedule(.renewalFlush(node: i, generation: node.generation), at: (now / period + 1) * period)
    }
}
