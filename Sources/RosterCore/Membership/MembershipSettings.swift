// MARK: - Settings

/// Timing and sizes of the membership protocol.
///
/// The defaults target SPEC §4.5 on a LAN or loopback with 3 to 10 nodes: a killed node is
/// `failed` everywhere within 5 s, and nodes that answer within ~100 ms each way are never
/// failed. The budget for a kill whose traffic silently vanishes (the worst case; a refused
/// connection only makes it faster), from the moment of death:
///
/// | stage | typical | worst seen |
/// |---|---|---|
/// | until some survivor probes the dead node | < 0.25 s | ~1.1 s |
/// | direct ping unanswered (`pingTimeout`) | 0.3 s | |
/// | indirect probe: every intermediary nacks, else `indirectPingTimeout` | 0.25 s | 0.5 s |
/// | suspicion not refuted (`suspicionTimeout`) | 2 s | |
/// | `failed` gossiped to every survivor (eager gossip) | < 0.1 s | 0.2 s |
/// | the shell's tick period, once per timeout | | 3 × 0.1 s |
///
/// Simulated with 100 ms ticks over 500 kills per cluster size (`MembershipSweepTests`):
/// median 2.9 s; worst 3.5 s with 3 nodes, 3.9 s with 10.
///
/// Why the probe interval is 250 ms, not SWIM's customary 0.5 to 1 s: each survivor probes its
/// n − 1 peers in a shuffled round robin, so the first probe of a dead node is a minimum over
/// independent random phases and has an exponential-like tail with the interval as its scale.
/// At 500 ms, about 1.5% of simulated kills in 10-node clusters took longer than 5 s; at 250 ms
/// none of thousands did. On a LAN the cost is four small pings a second per node.
public struct MembershipSettings: Sendable, Equatable {
    /// One probe round per interval: ping the next member in a shuffled round robin.
    public var probeInterval: Duration = .milliseconds(250)
    /// How long a direct ping waits for its ack before asking others to ping indirectly.
    /// Above a 200 ms round trip, so 100 ms one-way delays never trigger it.
    public var pingTimeout: Duration = .milliseconds(300)
    /// How many members are asked to ping a target that missed its direct ping (SWIM's k).
    public var indirectProbeCount: Int = 3
    /// How long the prober waits for the indirect path: ping-req, ping, ack, forwarded ack,
    /// which is four one-way delays. An intermediary answers with a nack after 80% of
    /// `pingTimeout`, so the nack arrives within this window too.
    public var indirectPingTimeout: Duration = .milliseconds(500)
    /// How long a suspect has to refute before it is declared failed. A suspected node is
    /// told directly and refutes within a few round trips, so this is several times that.
    public var suspicionTimeout: Duration = .seconds(2)
    /// The ceiling of Lifeguard's local health multiplier. All of this node's timeouts are
    /// multiplied by `1 + LHM`, so a node that is itself slow (missed nacks, had to refute)
    /// backs off instead of accusing healthy peers.
    public var maxLocalHealthMultiplier: Int = 8
    /// While there is fresh gossip, it is also pushed to `gossipFanout` random members this
    /// often, not only piggybacked on probes. This is what spreads "failed" quickly.
    public var gossipInterval: Duration = .milliseconds(200)
    public var gossipFanout: Int = 3
    /// Updates piggybacked on one message, at most.
    public var maxGossipPerMessage: Int = 16
    /// λ: each update is sent about `λ · ln(n + 1)` times, then dropped from the queue.
    public var retransmitMultiplier: Double = 3
    /// Failed and left members are kept this long, so late gossip cannot resurrect them,
    /// then forgotten.
    public var retention: Duration = .seconds(600)
    /// Join retries: the first after `joinBackoffInitial`, doubling up to `joinBackoffMax`.
    public var joinBackoffInitial: Duration = .milliseconds(500)
    public var joinBackoffMax: Duration = .seconds(5)
    /// How often to ping one random failed (not left) member, which lets a member that was
    /// wrongly failed across a partition learn it and refute once the network heals.
    public var reconnectInterval: Duration = .seconds(5)

    public init() {}
}

extension MembershipSettings {
    /// Whole milliseconds, the unit of `now`.
    static func millis(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds &* 1000 &+ attoseconds / 1_000_000_000_000_000
    }
}

// MARK: - Lifeguard local health

/// Lifeguard's local health multiplier: a measure of how much this node distrusts itself.
/// It rises when this node misses nacks from intermediaries (so the fault is likely local) or
/// has to refute a suspicion of itself, and falls by one with every successful probe.
struct LocalHealthMultiplier: Sendable, Equatable {
    private(set) var value: Int = 0
    let maximum: Int

    init(maximum: Int) { self.maximum = max(0, maximum) }

    mutating func raise(by amount: Int = 1) { value = min(maximum, value + max(0, amount)) }
    mutating func lower() { value = max(0, value - 1) }

    /// Stretches a timeout: `timeout · (1 + LHM)`.
    func scale(_ millis: Int64) -> Int64 { millis * Int64(value + 1) }
}
