import RosterCore

/// What a node needs to take part in a cluster.
public struct ClusterConfiguration: Sendable {
    public var nodeName: NodeID
    public var clusterID: String
    /// The `host:port` peers dial.
    public var advertise: String
    public var bindHost: String
    public var bindPort: Int
    public var seeds: [String]
    public var security: PeerTransportSecurity
    public var membership = MembershipSettings()
    public var replication = ReplicationSettings()
    /// How often a random peer's digest is compared with ours.
    public var antiEntropyInterval: Duration = .seconds(1)
    /// How often heartbeats and TTL renewals heard here go out, as one batch per peer. Well
    /// under the shortest TTL (1 s), so a renewal at any node reaches the owner in time.
    public var renewalBatchInterval: Duration = .milliseconds(250)
    /// How often membership's timers are driven.
    public var membershipTick: Duration = .milliseconds(50)
    /// The longest a starting node waits to join and catch up before it runs health checks
    /// anyway (its seeds may all be down).
    public var settleTimeoutMillis: Int64 = 10_000

    public init(
        nodeName: NodeID, clusterID: String, advertise: String, bindHost: String, bindPort: Int, seeds: [String],
        security: PeerTransportSecurity
    ) {
        self.nodeName = nodeName
        self.clusterID = clusterID
        self.advertise = advertise
        self.bindHost = bindHost
        self.bindPort = bindPort
        self.seeds = seeds
        self.security = security
    }
}
