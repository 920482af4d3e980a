import Logging
import Metrics
import NIOCore
import RosterCore
import RosterWire

/// The cluster shell: runs the pure membership and replication protocols over the peer
/// transport. It owns no registry state; records go in and out through the registry actor.
///
/// Transport events arrive through one ordered inbox. Timers (membership ticks, anti-entropy
/// rounds, rumor batches) are plain loops that call into the actor; the protocols themselves
/// never sleep or touch the network.
public actor ClusterNode {
    public nonisolated let configuration: ClusterConfiguration
    public nonisolated let generation: UInt64
    let registry: Registry
    let transport: PeerTransport
    let inbox: ClusterInbox
    let outbox = RumorOutbox()
    let renewals = RenewalOutbox()
    let replicator: Replicator
    let clock: NodeClock
    let logger: Logger
    let metrics = ClusterMetrics()
    /// Counts member state changes; read without an actor hop by the HTTP answer cache.
    public nonisolated let membershipVersion = VersionCounter()
    var membership: MembershipInstance
    var rng: SplitMix64
    /// Set once a peer's digest has matched ours: this node has caught up with the cluster.
    public internal(set) var caughtUp = false
    var firstSyncStarted = false
    /// The cluster view last given to the registry.
    var publishedView: ClusterView?
    /// When this node was created, on its monotonic clock.
    let startedAt: Int64

    public init(
        configuration: ClusterConfiguration, generation: UInt64, registry: Registry, eventLoopGroup: any EventLoopGroup,
        clock: NodeClock = .system, logger: Logger
    ) {
        self.configuration = configuration
        self.generation = generation
        self.registry = registry
        self.clock = clock
        self.logger = logger
        startedAt = clock.monotonicMillis()
        let identity = MemberIdentity(name: configuration.nodeName, generation: generation, address: configuration.advertise)
        membership = MembershipInstance(myself: identity, settings: configuration.membership, seed: generation)
        rng = SplitMix64(seed: generation ^ 0x5EED)
        replicator = Replicator(node: configuration.nodeName, settings: configuration.replication)
        inbox = ClusterInbox()
        let handshake = Handshake(
            clusterID: configuration.clusterID, nodeName: configuration.nodeName, generation: generation,
            advertise: configuration.advertise)
        transport = PeerTransport(
            configuration: PeerTransportConfiguration(handshake: handshake, security: configuration.security),
            eventLoopGroup: eventLoopGroup, logger: logger, delegate: inbox)
    }

    // MARK: - Lifecycle

    /// Binds the cluster port and starts joining through the seeds. Returns the bound port.
    @discardableResult
    public func start() async throws -> Int {
        let port = try await transport.start(bind: configuration.bindHost, port: configuration.bindPort)
        let outbox = self.outbox
        await registry.setLocalCommitHandler { records in outbox.add(records) }
        let renewals = self.renewals
        await registry.setRenewalHandler { renewal in renewals.add(renewal) }
        let seeds = configuration.seeds.filter { $0 != configuration.advertise }
        logger.notice(
            "cluster listening", metadata: ["bind": "\(configuration.bindHost):\(port)", "seeds": "\(seeds.joined(separator: ","))"])
        perform(membership.join(seeds: seeds, now: clock.monotonicMillis()))
        return port
    }

    /// Runs the protocol loops until the calling task is cancelled.
    public nonisolated func runLoops() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in self.inbox.events { await self.handle(event) }
            }
            group.addTask { await self.every(self.configuration.membershipTick) { await $0.tickMembership() } }
            group.addTask { await self.every(self.configuration.antiEntropyInterval) { await $0.antiEntropy() } }
            // Rumors leave as soon as a write lands; writes that land while a rumor is being sent
            // go out together in the next one.
            group.addTask {
                for await _ in self.outbox.ready { await self.flushRumors() }
            }
            group.addTask { await self.every(self.configuration.renewalBatchInterval) { await $0.flushRenewals() } }
            // Children are cancelled with this task; iterating the inbox ends on cancellation too.
            await group.waitForAll()
        }
    }

    private nonisolated func every(_ interval: Duration, _ action: @Sendable (ClusterNode) async -> Void) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            await action(self)
        }
    }

    /// Announces a graceful leave, gives the announcement a moment to go out, then closes every
    /// connection. Peers record this node as `left`, not `failed`.
    public func leave() async {
        await flushRumors()
        perform(membership.leave(now: clock.monotonicMillis()))
        let deadline = clock.monotonicMillis() + 1_500
        while clock.monotonicMillis() < deadline {
            let pending = membership.members.map { transport.queueDepth(for: $0.identity.address).frames }.reduce(0, +)
            if pending == 0 { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        // An empty queue means handed to the connection, not yet written through TLS to the
        // socket; closing at once could cut the announcement off.
        try? await Task.sleep(for: .milliseconds(150))
        logger.notice("left the cluster")
        await transport.shutdown()
    }

    // MARK: - Views

    public var members: [Member] { membership.members }

    /// Whether the join went through (or there was no one to join).
    public var hasJoined: Bool { membership.hasJoined }

    /// Live peers by name, excluding this node: the targets of replication.
    var livePeers: [NodeID] {
        membership.livePeerNames
    }
}
