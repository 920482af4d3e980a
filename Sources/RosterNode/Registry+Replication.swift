import RosterCore

/// The registry's side of replication. The cluster shell calls these; the pure `Replicator`
/// runs on the actor against the live state, so no copy of a large registry is ever made.
extension Registry {
    /// Sets where records written at this node go for rumor mongering.
    public func setLocalCommitHandler(_ handler: @escaping @Sendable ([Record]) -> Void) {
        onLocalCommit = handler
    }

    /// Sets where lease renewals heard at this node go for batching to peers.
    public func setRenewalHandler(_ handler: @escaping @Sendable (LeaseRenewal) -> Void) {
        onRenewal = handler
    }

    /// Applies renewals heard at other nodes: the shown heartbeat time moves, and the TTLs of
    /// checks this node owns are re-armed on this node's own clock.
    public func applyRenewals(_ renewals: [LeaseRenewal]) {
        let now = clock.monotonicMillis()
        for renewal in renewals {
            guard let instance = state.instance(renewal.instanceID) else { continue }
            let beat = Timestamp(millisecondsSinceEpoch: renewal.wallMillis)
            if renewal.checkIDs.isEmpty && beat > (heartbeats[renewal.instanceID] ?? instance.lastHeartbeat) {
                heartbeats[renewal.instanceID] = beat
            }
            guard owns(instance) else { continue }
            if renewal.checkIDs.isEmpty {
                armTTLChecks(of: instance, now: now)
            } else {
                for checkID in renewal.checkIDs { armTTLChecks(of: instance, now: now, only: checkID) }
            }
        }
    }

    /// Merges records from a peer. Each that changes the state is logged (so a restart keeps it)
    /// but not waited for: a peer's write was acknowledged by its own node's fsync.
    /// Returns the records that changed something, for rumor forwarding.
    public func applyRemote(_ records: [Record]) -> [Record] {
        var changed: [Record] = []
        let now = clock.monotonicMillis()
        for record in records {
            hlc.observe(record.stamp)
            guard !wasCollected(record), let change = state.apply(record) else { continue }
            if change.resolvedConflict { metrics.conflictsResolved.increment() }
            let index = noteApplied(change)
            _ = wal.append(LogEntry(index: index, record: change.current))
            changed.append(change.current)
            // An instance this node now owns (a takeover, or its own instance seen again after
            // a restart) gets its TTLs armed by this node's clock.
            if let instance = change.current.instance, owns(instance) {
                armTTLChecks(of: instance, now: now)
            }
        }
        if !changed.isEmpty { metrics.deltasApplied.increment(by: changed.count) }
        return changed
    }

    /// Runs one replication message through the protocol against the current state.
    public func handleReplication(_ message: ReplicationMessage, from peer: NodeID, replicator: Replicator) -> [ReplicationDirective] {
        replicator.receive(message, from: peer, state: state)
    }

    /// Starts an anti-entropy round with one of `peers`.
    public func startAntiEntropy(replicator: Replicator, peers: [NodeID], seed: UInt64) -> [ReplicationDirective] {
        var rng = SplitMix64(seed: seed)
        return replicator.startAntiEntropy(state: state, lastSync: lastSync, peers: peers, using: &rng)
    }

    /// Handles a peer's digest: checks whether this node is stale (and resets if so), notes the
    /// contact, and decides whether to reconcile. A sender that last synced before this node's
    /// collection horizon is stale: reconciling would take records whose deletion was forgotten
    /// here, so it gets this node's digest instead, which makes it reset before it tries again.
    public func handleDigest(
        _ message: ReplicationMessage, from peer: NodeID, replicator: Replicator
    ) async -> (directives: [ReplicationDirective], inSync: Bool) {
        guard case .digest(let root, _, let horizon, let peerLastSync) = message else { return ([], false) }
        await resetIfStale(peerHorizon: horizon, peer: peer)
        noteSynced()
        if peerLastSync < state.collectionHorizon {
            logger.info(
                "peer \(peer) last synced before this node's collection horizon; asking it to reset before reconciling")
            return ([.send(replicator.digest(of: state, lastSync: lastSync), to: peer)], false)
        }
        return (replicator.receive(message, from: peer, state: state), root == state.digest.root)
    }

    /// The digest root and record count, for `/health` and convergence checks.
    public var digestSummary: (root: UInt64, records: Int) {
        (state.digest.root, state.records.count)
    }
}
