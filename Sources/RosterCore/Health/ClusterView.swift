/// What a node knows of the cluster that matters to health checking: who is reachable, who is
/// gone, and so who owns which checks and whether expiry is safe (SPEC §4.6, §4.7).
///
/// **Ownership.** The node a service registered through (`ServiceInstance.node`) owns its checks
/// while it is live. When it is failed or has left, the live member with the highest rendezvous
/// hash of (instance id, member name) takes them over; every node computes the same answer from
/// the same membership, so exactly one node probes once membership has converged, and a node's
/// death spreads its checks evenly over the survivors instead of onto one of them.
///
/// **Hand-back.** When the first owner returns it takes its checks back. Ownership is then a
/// pure function of the membership, with no ownership writes to replicate, order or resolve,
/// and checks run next to the agent the service chose (usually on its own host). The cost is a
/// second, brief handoff when the owner returns; that one is as clean as the first, since the
/// taker stops as soon as it sees the owner alive.
///
/// **Self-preservation.** A node that reaches fewer than half of the members it knows cannot
/// tell "they died" from "I am cut off", so it stops expiring TTLs and removing critical
/// instances, and does not take over anyone's checks. Unlike Eureka's renewal threshold this
/// depends only on membership, so it ends as soon as the node reaches a majority again, or when
/// the unreachable members are forgotten (membership retention); a two-node cluster that loses
/// one node still reaches half and never enters it.
///
/// **Self-doubt.** A node cut off from its peers but not from its clients takes seconds to
/// see its peers as failed (Lifeguard stretches its suspicions on purpose), and meanwhile it
/// hears only the renewals sent to it directly: the chaos run saw such a node expire, and
/// then deregister, a service whose client kept renewing it at other nodes. Its own probes
/// fail at once, though, with no peer even nacking, which raises its local health multiplier.
/// While that is above zero the node doubts itself and, as in self-preservation, judges no
/// TTL and removes nothing. It still runs checks and takes over, since probing is harmless.
public struct ClusterView: Sendable, Equatable {
    /// This node.
    public let me: NodeID
    /// Alive or suspect members, this node included.
    public let live: Set<NodeID>
    /// Members known to be failed or to have left.
    public let down: Set<NodeID>
    /// Members that count towards self-preservation: every known member that has not left.
    public let known: Int
    /// Whether this node has joined and caught up (or given up waiting to), so that a node it
    /// has never heard of is gone rather than not yet learnt about, and its own checks can run.
    public let settled: Bool
    /// Whether this node's own probes are failing where its peers' would not (Lifeguard's
    /// local health multiplier is above zero): it may be the one that is cut off.
    public let doubting: Bool

    public init(me: NodeID, live: Set<NodeID>, down: Set<NodeID>, known: Int, settled: Bool, doubting: Bool = false) {
        self.me = me
        self.live = live.union([me])
        self.down = down.subtracting([me])
        self.known = max(known, self.live.count)
        self.settled = settled
        self.doubting = doubting
    }

    /// A node that is not in a cluster: it owns every check.
    public static func solo(_ me: NodeID) -> ClusterView {
        ClusterView(me: me, live: [me], down: [], known: 1, settled: true)
    }

    /// Reads the view off a membership list.
    public init(me: NodeID, members: [Member], settled: Bool, doubting: Bool = false) {
        var live: Set<NodeID> = [me]
        var down: Set<NodeID> = []
        var known = 0
        for member in members {
            if member.isLive { live.insert(member.name) } else { down.insert(member.name) }
            if member.state != .left { known += 1 }
        }
        self.init(me: me, live: live, down: down, known: known, settled: settled, doubting: doubting)
    }

    /// Fewer than half of the known members are reachable.
    public var selfPreserving: Bool { live.count * 2 < known }

    /// TTL expiry and the removal of critical instances wait: in self-preservation or self-doubt.
    public var pausesExpiry: Bool { selfPreserving || doubting }

    /// The node that runs `instance`'s checks, as far as this node can tell; nil when it is the
    /// registering node and this node cannot yet say whether that node is alive.
    public func owner(of instance: ServiceInstance) -> NodeID? {
        owner(instanceID: instance.instanceID, registeredVia: instance.node)
    }

    public func owner(instanceID: String, registeredVia origin: NodeID) -> NodeID? {
        if live.contains(origin) { return origin }
        let gone = down.contains(origin) || settled
        guard gone else { return nil }
        // A node cut off from most of the cluster keeps to its own instances: taking over the
        // rest would have it probe everything the majority side is already probing.
        if selfPreserving { return nil }
        return Self.rendezvous(instanceID, among: live)
    }

    /// Whether this node runs `instance`'s checks now. Nothing runs before the node has settled:
    /// a restarted owner that probed at once would probe alongside the survivor that took its
    /// checks over, until that survivor hears it is back.
    public func owns(_ instance: ServiceInstance) -> Bool { settled && owner(of: instance) == me }

    /// Highest random weight: the member with the largest hash of (key, member) wins. Ties,
    /// which need a 64-bit collision, go to the larger name so every node agrees.
    public static func rendezvous(_ key: String, among members: Set<NodeID>) -> NodeID? {
        members.max { a, b in
            let (wa, wb) = (weight(key, a), weight(key, b))
            return wa != wb ? wa < wb : a < b
        }
    }

    /// FNV-1a over key, a separator and the member name, then a SplitMix64 finaliser so that
    /// names differing in one character get unrelated weights. Stable across processes and
    /// platforms, unlike `Hasher`.
    static func weight(_ key: String, _ member: NodeID) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ 0xff) &* 0x100_0000_01b3
        for byte in member.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        return hash ^ (hash >> 31)
    }
}
