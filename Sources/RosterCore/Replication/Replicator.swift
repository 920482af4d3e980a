/// Tuning of replication.
public struct ReplicationSettings: Sendable {
    /// Peers each rumor goes to (Demers et al.: about 3 reaches everyone fast).
    public var fanout = 3
    /// The most records one message carries, keeping frames well under the frame limit.
    public var maxRecordsPerMessage = 1000
    /// The most buckets one summary message covers.
    public var maxBucketsPerSummary = 32

    public init() {}

    /// Hops a rumor may travel: enough for fanout^hops to cover the cluster, plus slack.
    /// Anti-entropy repairs whatever the rumor misses.
    public func rumorHops(clusterSize: Int) -> UInt8 {
        guard clusterSize > 1 else { return 0 }
        var hops: UInt8 = 0
        var reach = 1.0
        while reach < Double(clusterSize) && hops < 16 {
            reach *= Double(max(fanout, 2))
            hops += 1
        }
        return hops + 1
    }
}

/// What the shell must do for replication.
public enum ReplicationDirective: Sendable, Equatable {
    case send(ReplicationMessage, to: NodeID)
    /// Merge these records; if `forwardHops` is set, forward those that changed anything.
    case apply([Record], from: NodeID, forwardHops: UInt8?)
    /// Renew these leases locally.
    case renew([LeaseRenewal])
}

/// The replication protocol: rumor mongering for speed, anti-entropy for the guarantee.
///
/// Pure and stateless: every decision is a function of the registry state, the live peers and
/// an injected random generator, so tests and the simulator drive it without sockets or time.
public struct Replicator: Sendable {
    public var node: NodeID
    public var settings: ReplicationSettings

    public init(node: NodeID, settings: ReplicationSettings = ReplicationSettings()) {
        self.node = node
        self.settings = settings
    }

    // MARK: - Rumors

    /// Pushes records written here to `fanout` random live peers.
    public func rumor(_ records: [Record], peers: [NodeID], using rng: inout some RandomNumberGenerator) -> [ReplicationDirective] {
        forward(records, hops: settings.rumorHops(clusterSize: peers.count + 1), except: nil, peers: peers, using: &rng)
    }

    /// Forwards records that were new here, one hop fewer, to random peers other than the sender.
    public func forward(
        _ records: [Record], hops: UInt8, except sender: NodeID?, peers: [NodeID], using rng: inout some RandomNumberGenerator
    ) -> [ReplicationDirective] {
        guard !records.isEmpty, hops > 0 else { return [] }
        let targets = peers.randomSample(settings.fanout, excluding: { $0 == sender || $0 == node }, using: &rng)
        return chunks(records).flatMap { chunk in
            targets.map { ReplicationDirective.send(.rumor(records: chunk, hops: hops - 1), to: $0) }
        }
    }

    /// Sends a batch of renewals to every live peer: every node shows the latest heartbeat, and
    /// whichever owns a check (now or after a takeover) has its TTL renewed.
    public func broadcast(_ renewals: [LeaseRenewal], peers: [NodeID]) -> [ReplicationDirective] {
        guard !renewals.isEmpty else { return [] }
        return peers.filter { $0 != node }.map { .send(.renewals(renewals), to: $0) }
    }

    // MARK: - Anti-entropy

    /// Starts a round with one random live peer: send only our root hash.
    public func startAntiEntropy(
        state: RegistryState, lastSync: HLCTimestamp, peers: [NodeID], using rng: inout some RandomNumberGenerator
    ) -> [ReplicationDirective] {
        guard let peer = peers.randomSample(1, excluding: { $0 == node }, using: &rng).first else { return [] }
        return [.send(digest(of: state, lastSync: lastSync), to: peer)]
    }

    /// This node's digest: root hash, record count, collection horizon and last sync.
    public func digest(of state: RegistryState, lastSync: HLCTimestamp) -> ReplicationMessage {
        .digest(root: state.digest.root, count: UInt64(state.records.count), horizon: state.collectionHorizon, lastSync: lastSync)
    }

    /// Handles a message from `peer`.
    public func receive(_ message: ReplicationMessage, from peer: NodeID, state: RegistryState) -> [ReplicationDirective] {
        switch message {
        case .rumor(let records, let hops):
            return [.apply(records, from: peer, forwardHops: hops)]
        case .renewals(let renewals):
            return [.renew(renewals)]
        case .digest(let root, _, _, _):
            guard root != state.digest.root else { return [] }
            return [.send(.bucketDigest(state.digest.buckets), to: peer)]
        case .bucketDigest(let theirs):
            let differing = state.digest.differingBuckets(theirs)
            return stride(from: 0, to: differing.count, by: settings.maxBucketsPerSummary).map { start in
                let slice = differing[start..<min(start + settings.maxBucketsPerSummary, differing.count)]
                let summaries = slice.map { bucket in
                    BucketSummary(bucket: bucket, entries: state.summary(ofBucket: bucket).map { KeyHash(key: $0.key, hash: $0.hash) })
                }
                return .send(.bucketSummaries(summaries), to: peer)
            }
        case .bucketSummaries(let summaries):
            return reconcile(summaries, from: peer, state: state)
        case .records(let records, let wanted):
            var directives: [ReplicationDirective] = records.isEmpty ? [] : [.apply(records, from: peer, forwardHops: nil)]
            let ours = wanted.compactMap { state.record(for: $0) }
            directives += chunks(ours).map { .send(.records($0, wanted: []), to: peer) }
            return directives
        }
    }

    /// Compares a peer's bucket summaries with ours: sends what we hold that differs or the peer
    /// lacks, and asks for what the peer holds that differs or we lack. Both sides merge, so it
    /// does not matter here which version is newer.
    func reconcile(_ summaries: [BucketSummary], from peer: NodeID, state: RegistryState) -> [ReplicationDirective] {
        var send: [Record] = []
        var want: [String] = []
        for summary in summaries {
            let theirs = Dictionary(summary.entries.map { ($0.key, $0.hash) }, uniquingKeysWith: { a, _ in a })
            for (key, hash) in state.summary(ofBucket: summary.bucket) where theirs[key] != hash {
                if let record = state.record(for: key) { send.append(record) }
            }
            for entry in summary.entries where state.recordHash(for: entry.key) != entry.hash {
                want.append(entry.key)
            }
        }
        guard !send.isEmpty || !want.isEmpty else { return [] }
        var directives: [ReplicationDirective] = []
        let recordChunks = chunks(send)
        let wantChunks = stride(from: 0, to: want.count, by: settings.maxRecordsPerMessage).map {
            Array(want[$0..<min($0 + settings.maxRecordsPerMessage, want.count)])
        }
        for i in 0..<max(recordChunks.count, wantChunks.count) {
            directives.append(.send(.records(i < recordChunks.count ? recordChunks[i] : [], wanted: i < wantChunks.count ? wantChunks[i] : []), to: peer))
        }
        return directives
    }

    private func chunks(_ records: [Record]) -> [[Record]] {
        stride(from: 0, to: records.count, by: settings.maxRecordsPerMessage).map {
            Array(records[$0..<min($0 + settings.maxRecordsPerMessage, records.count)])
        }
    }
}
