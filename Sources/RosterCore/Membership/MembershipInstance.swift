// MARK: - Directives

/// What the shell must do after an input. Timers are not directives: the shell calls
/// `tick(now:)` regularly (every 50 to 100 ms) and the instance checks its own deadlines.
public enum MembershipDirective: Sendable, Equatable {
    /// Send `message` to the peer listening at `address` ("host:port"). If it cannot be
    /// delivered, report that with `connectionFailed(to:now:)`.
    case send(MembershipMessage, to: String)
    /// A member appeared (`previous == nil`), changed state, or came back as a new generation.
    /// For the shell to log, export as a metric, and hand to ownership.
    case stateChanged(Member, previous: MemberState?)
}

// MARK: - Instance

/// The membership and failure-detection state machine: SWIM probing (direct ping, then
/// indirect pings through k others, then suspicion, then failure) with Lifeguard's local health
/// multiplier, incarnations, generations, piggybacked gossip and graceful leave.
///
/// It is a pure value, after apple/swift-cluster-membership's `SWIM.Instance`: it does no I/O,
/// never reads a clock and owns its random number generator. Every input takes `now`, this
/// node's monotonic milliseconds, and returns what the shell must do. The inputs live in
/// extensions: `+Lifecycle` (join, leave), `+Probing` (tick, connection failures), `+Receive`
/// (messages) and `+Gossip` (applying and spreading news).
public struct MembershipInstance: Sendable {
    public let settings: MembershipSettings

    /// This node's own record. Only this node changes its incarnation.
    var me: Member
    /// Every other member this node knows, including failed and left ones until retention ends.
    var records = MemberTable()
    var rng: SplitMix64
    var localHealth: LocalHealthMultiplier

    /// One counter for every ping this node sends: probes, relays and gossip pushes.
    var lastSequence: UInt64 = 0
    /// This node's outstanding probes, by the sequence of their ping.
    var probes: [UInt64: Probe] = [:]
    /// Pings this node sends on behalf of another prober, by this node's sequence.
    var relays: [UInt64: Relay] = [:]

    /// Randomized round robin: a shuffled list of names, walked once, then reshuffled.
    var probeOrder: [NodeID] = []
    var probeIndex = 0
    var nextProbeAt: Int64?
    var nextGossipAt: Int64?
    var nextReconnectAt: Int64?

    var gossip = GossipQueue()
    var joining = JoinProgress()

    public init(myself: MemberIdentity, settings: MembershipSettings = MembershipSettings(), seed: UInt64) {
        self.settings = settings
        self.me = Member(identity: myself, state: .alive, incarnation: 0)
        self.rng = SplitMix64(seed: seed)
        self.localHealth = LocalHealthMultiplier(maximum: settings.maxLocalHealthMultiplier)
    }

    // MARK: Reading

    /// This node's own record, as it gossips it.
    public var myself: Member { me }

    /// Every known member, this node included, failed and left ones until forgotten; by name.
    public var members: [Member] {
        ([me] + records.values.map(\.member)).sorted { $0.name < $1.name }
    }

    /// Alive and suspect members, this node included unless it has left; by name.
    public var liveMembers: [Member] {
        var live = records.liveNames.compactMap { records[$0]?.member }
        if me.isLive { live.insert(me, at: live.firstIndex { $0.name > me.name } ?? live.count) }
        return live
    }

    /// Alive and suspect members other than this node, by name: the peers to replicate to.
    /// Kept current as members change, so reading it costs no sort (it is read per message).
    public var livePeerNames: [NodeID] { records.liveNames }

    /// Every known member, this node included, as `members.count` without building the list.
    public var memberCount: Int { records.count + 1 }

    /// As `liveMembers.count`, without building the list.
    public var liveMemberCount: Int { records.liveNames.count + (me.isLive ? 1 : 0) }

    /// Updates still waiting to be gossiped: zero once news has spread and the node is quiet.
    public var pendingGossipCount: Int { gossip.count }

    /// Whether some member other than this node listens at `address`.
    public func knowsMember(atAddress address: String) -> Bool { !records.names(atAddress: address).isEmpty }

    public func member(named name: NodeID) -> Member? {
        name == me.name ? me : records[name]?.member
    }

    /// Lifeguard's local health multiplier, 0 when healthy. Worth exporting as a metric.
    public var localHealthMultiplier: Int { localHealth.value }

    /// Whether some seed has answered the join (or there were no other seeds to ask).
    public var hasJoined: Bool { joining.joined }
}

// MARK: - Internal records

/// A member with the local bookkeeping that never goes on the wire.
struct MemberRecord: Sendable {
    var member: Member
    /// When this node learned the current state; retention of failed and left counts from here.
    var since: Int64
    /// For a suspect: when this node declares it failed unless it refutes first.
    var suspicionDeadline: Int64?
}

/// A probe this node started.
struct Probe: Sendable {
    enum Phase: Sendable {
        case direct
        /// Waiting on intermediaries (name to address); `nacks` names those that nacked.
        case indirect(helpers: [NodeID: String], nacks: Set<NodeID>)
    }

    var target: MemberIdentity
    var phase: Phase
    var deadline: Int64
}

/// A ping this node sends for another prober.
struct Relay: Sendable {
    var origin: String
    var originSequence: UInt64
    var target: MemberIdentity
    var deadline: Int64
}

/// Seeds, and when to ask them again.
struct JoinProgress: Sendable {
    var seeds: [String] = []
    var joined = true
    var backoff: Int64 = 0
    var nextAttemptAt: Int64 = 0
}

// MARK: - Helpers

extension MembershipInstance {
    func millis(_ duration: Duration) -> Int64 { MembershipSettings.millis(duration) }

    /// A timeout of this node's, stretched by its local health multiplier.
    func scaled(_ duration: Duration) -> Int64 { localHealth.scale(millis(duration)) }

    mutating func nextSequence() -> UInt64 {
        lastSequence &+= 1
        return lastSequence
    }

    /// The member, other than this node, that listens at `address`; a live one if several
    /// (an old failed life and its successor may share an address).
    func record(atAddress address: String) -> MemberRecord? {
        let here = records.names(atAddress: address).compactMap { records[$0] }
        return here.first(where: \.member.isLive) ?? here.first
    }

    /// Up to `count` distinct names picked at random from `candidates`.
    mutating func pick(_ count: Int, from candidates: [NodeID]) -> [NodeID] {
        candidates.randomSample(count, using: &rng)
    }
}
