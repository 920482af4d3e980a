// MARK: - Identity

/// Who a member is. The name outlives restarts; the generation tells one life of the process
/// carrying that name from the next; the address is the "host:port" the shell dials.
///
/// A restarted node comes back with a higher generation. Peers treat that as a new life that
/// replaces whatever they knew about the old one, and ignore any later news about older lives.
public struct MemberIdentity: Hashable, Sendable, CustomStringConvertible {
    public var name: NodeID
    public var generation: UInt64
    public var address: String

    public init(name: NodeID, generation: UInt64, address: String) {
        self.name = name
        self.generation = generation
        self.address = address
    }

    public var description: String { "\(name)#\(generation)@\(address)" }
}

// MARK: - State

/// What this node believes about a member (SPEC §4.5).
public enum MemberState: String, Sendable, Hashable, CaseIterable {
    /// Answers probes, or has refuted every suspicion so far.
    case alive
    /// Missed a direct and an indirect probe; it has the suspicion timeout to refute.
    case suspect
    /// Did not refute in time. Only the member itself can undo this, with a higher incarnation.
    case failed
    /// Announced a graceful leave. Final for this generation.
    case left

    /// Alive and suspect members are still probed and still count as part of the cluster.
    public var isLive: Bool { self == .alive || self == .suspect }

    /// For the same incarnation: suspect beats alive, failed beats both.
    var precedence: UInt8 {
        switch self {
        case .alive: 0
        case .suspect: 1
        case .failed: 2
        case .left: 3
        }
    }
}

// MARK: - Member

/// One entry of the membership table, and also one unit of gossip.
public struct Member: Hashable, Sendable, CustomStringConvertible {
    public var identity: MemberIdentity
    public var state: MemberState
    /// Raised only by the member itself, to refute suspicion or to announce its leave.
    public var incarnation: UInt64

    public init(identity: MemberIdentity, state: MemberState, incarnation: UInt64) {
        self.identity = identity
        self.state = state
        self.incarnation = incarnation
    }

    public var name: NodeID { identity.name }
    public var isLive: Bool { state.isLive }

    public var description: String { "\(identity) \(state.rawValue)/\(incarnation)" }

    /// Whether this news should replace `current`, by SWIM precedence extended with generations:
    ///
    /// - a higher generation replaces everything, a lower one nothing;
    /// - `left` is final for its generation;
    /// - otherwise the larger `(incarnation, state)` wins, with alive < suspect < failed. So
    ///   alive(i) beats suspect/alive(j < i), suspect(i) beats alive(j ≤ i) and suspect(j < i),
    ///   and failed(i) beats alive/suspect(j ≤ i).
    ///
    /// Departure from the letter of "failed beats every incarnation": a member wrongly declared
    /// failed (say, across a partition) refutes with alive(i + 1), and that wins here, as in
    /// memberlist. Only the member itself can raise its incarnation, so a node that is really
    /// dead stays failed; without this, a healed partition could never merge again until every
    /// wrongly failed node restarted.
    public func supersedes(_ current: Member) -> Bool {
        guard identity.name == current.identity.name else { return false }
        if identity.generation != current.identity.generation {
            return identity.generation > current.identity.generation
        }
        if current.state == .left { return false }
        if state == .left { return true }
        return (incarnation, state.precedence) > (current.incarnation, current.state.precedence)
    }
}

// MARK: - Randomness

/// SplitMix64: small, fast and reproducible. The instance owns one, seeded by the caller, so a
/// simulation run is replayed exactly from its printed seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
