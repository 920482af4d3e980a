import Testing

@testable import RosterCore

/// A tiny deterministic network of membership instances: one virtual clock in milliseconds,
/// per-message delay and loss drawn from a seeded RNG, nodes that can be killed (all traffic to
/// and from them dropped, like `kill -9` behind a firewall) and restarted. Every message goes
/// through the binary codec, so the codec is exercised by every run.
struct MembershipSimNetwork {
    struct InFlight {
        var deliverAt: Int64
        var order: UInt64
        var from: String
        var to: String
        var bytes: [UInt8]
    }

    /// A state change some node reported, for measuring detection times.
    struct Observation {
        var at: Int64
        var observer: NodeID
        var member: Member
        var previous: MemberState?
    }

    let seed: UInt64
    var settings: MembershipSettings
    var rng: SeededRandom
    var now: Int64 = 0
    /// One-way delay of each message, uniform in this range.
    var delay: ClosedRange<Int64> = 1...5
    var lossRate: Double = 0
    /// How often each node's shell calls `tick`; every node starts at a random phase.
    var tickInterval: Int64 = 100
    /// When true, a send to a dead or unknown address is reported back with `connectionFailed`,
    /// as a refused TCP connect on loopback would be. When false, such traffic vanishes.
    var reportsConnectionFailures = false

    private(set) var nodes: [NodeID: MembershipInstance] = [:]
    private(set) var observations: [Observation] = []
    private(set) var messagesSent = 0
    private var nextTick: [NodeID: Int64] = [:]
    private var queue: [InFlight] = []
    private var order: UInt64 = 0
    private var generations: [NodeID: UInt64] = [:]
    /// Names whose traffic is dropped: killed nodes and the minority of a partition.
    private(set) var cutOff: Set<NodeID> = []
    /// Pairs that cannot talk (a partition), as unordered name pairs.
    private var blocked: Set<[NodeID]> = []

    init(seed: UInt64, settings: MembershipSettings = MembershipSettings()) {
        self.seed = seed
        self.settings = settings
        self.rng = SeededRandom(seed: seed)
    }

    static func address(_ name: NodeID) -> String { "\(name).test:7946" }
    static func name(_ address: String) -> NodeID { String(address.prefix { $0 != "." }) }

    // MARK: Nodes

    /// Starts a node (a fresh life with a new generation) that joins `seeds`.
    mutating func start(_ name: NodeID, seeds: [NodeID]) {
        let generation = (generations[name] ?? 0) + 1
        generations[name] = generation
        let identity = MemberIdentity(name: name, generation: generation, address: Self.address(name))
        var instance = MembershipInstance(myself: identity, settings: settings, seed: rng.next())
        let directives = instance.join(seeds: seeds.map(Self.address), now: now)
        nodes[name] = instance
        cutOff.remove(name)
        nextTick[name] = now + Int64.random(in: 0..<tickInterval, using: &rng)
        carryOut(directives, by: name)
    }

    /// Starts `names[0]` alone and every other node with `names[0]` as its only seed.
    mutating func startCluster(_ names: [NodeID]) {
        guard let first = names.first else { return }
        start(first, seeds: [])
        for name in names.dropFirst() { start(name, seeds: [first]) }
    }

    /// `kill -9`: the process is gone and nothing more is heard from it.
    mutating func kill(_ name: NodeID) {
        nodes[name] = nil
        nextTick[name] = nil
        cutOff.insert(name)
    }

    mutating func leave(_ name: NodeID) {
        guard var instance = nodes[name] else { return }
        let directives = instance.leave(now: now)
        nodes[name] = instance
        carryOut(directives, by: name)
    }

    /// Drops every message between the two groups until `heal()`.
    mutating func partition(_ left: [NodeID], _ right: [NodeID]) {
        for a in left { for b in right { blocked.insert([a, b].sorted()) } }
    }

    mutating func heal() { blocked.removeAll() }

    // MARK: Running

    /// Runs until `deadline`, or until `done` holds (checked after every event); returns
    /// whether `done` held.
    @discardableResult
    mutating func run(until deadline: Int64, stopWhen done: (MembershipSimNetwork) -> Bool = { _ in false }) -> Bool {
        while true {
            if done(self) { return true }
            let nextMessage = queue.min { ($0.deliverAt, $0.order) < ($1.deliverAt, $1.order) }
            let nextTickAt = nextTick.values.min()
            let next = [nextMessage?.deliverAt, nextTickAt].compactMap { $0 }.min()
            guard let next, next <= deadline else {
                now = deadline
                return done(self)
            }
            now = next
            if let message = nextMessage, message.deliverAt == next {
                queue.removeAll { $0.order == message.order }
                deliver(message)
            } else if let name = nextTick.filter({ $0.value == next }).keys.sorted().first {
                nextTick[name] = next + tickInterval
                guard var instance = nodes[name] else { continue }
                let directives = instance.tick(now: now)
                nodes[name] = instance
                carryOut(directives, by: name)
            }
        }
    }

    @discardableResult
    mutating func run(for duration: Int64, stopWhen done: (MembershipSimNetwork) -> Bool = { _ in false }) -> Bool {
        run(until: now + duration, stopWhen: done)
    }

    private mutating func deliver(_ message: InFlight) {
        let receiver = Self.name(message.to)
        guard var instance = nodes[receiver] else { return }
        let decoded: MembershipMessage
        do {
            decoded = try MembershipMessage.decode(bytes: message.bytes)
        } catch {
            Issue.record("seed \(seed): undecodable message from \(message.from): \(error)")
            return
        }
        let directives = instance.receive(decoded, from: message.from, now: now)
        nodes[receiver] = instance
        carryOut(directives, by: receiver)
    }

    private mutating func carryOut(_ directives: [MembershipDirective], by name: NodeID) {
        for directive in directives {
            switch directive {
            case .stateChanged(let member, let previous):
                observations.append(Observation(at: now, observer: name, member: member, previous: previous))
            case .send(let message, let to):
                send(message, from: name, to: to)
            }
        }
    }

    private mutating func send(_ message: MembershipMessage, from sender: NodeID, to address: String) {
        messagesSent += 1
        let receiver = Self.name(address)
        if nodes[receiver] == nil, reportsConnectionFailures {
            guard var instance = nodes[sender] else { return }
            let directives = instance.connectionFailed(to: address, now: now)
            nodes[sender] = instance
            carryOut(directives, by: sender)
            return
        }
        if cutOff.contains(sender) || cutOff.contains(receiver) || blocked.contains([sender, receiver].sorted()) {
            return
        }
        if lossRate > 0, Double.random(in: 0..<1, using: &rng) < lossRate { return }
        order += 1
        queue.append(
            InFlight(
                deliverAt: now + Int64.random(in: delay, using: &rng), order: order, from: Self.address(sender),
                to: address, bytes: message.encoded))
    }

    // MARK: Looking

    /// What `observer` believes about `name`, if it is running and knows it.
    func state(of name: NodeID, at observer: NodeID) -> MemberState? {
        nodes[observer]?.member(named: name)?.state
    }

    func member(_ name: NodeID, at observer: NodeID) -> Member? { nodes[observer]?.member(named: name) }

    var runningNames: [NodeID] { nodes.keys.sorted() }

    /// Whether every running node lists every running node, itself included, as alive with
    /// its current generation.
    var allAliveEverywhere: Bool {
        let names = runningNames
        return names.allSatisfy { observer in
            names.allSatisfy { name in
                let member = nodes[observer]?.member(named: name)
                return member?.state == .alive && member?.identity.generation == generations[name]
            }
        }
    }

    /// Whether every running node holds `name` in `state`.
    func everyoneSees(_ name: NodeID, as state: MemberState) -> Bool {
        runningNames.filter { $0 != name }.allSatisfy { self.state(of: name, at: $0) == state }
    }

    /// When `observer` first recorded `name` in `state` at or after `since`.
    func firstTime(_ observer: NodeID, saw name: NodeID, as state: MemberState, since: Int64) -> Int64? {
        observations.first {
            $0.at >= since && $0.observer == observer && $0.member.name == name && $0.member.state == state
        }?
        .at
    }

    /// Observations of `state` about anyone, for spotting false positives.
    func observations(of state: MemberState) -> [Observation] {
        observations.filter { $0.member.state == state }
    }
}
