import RosterCore

/// One node's clocks: a fixed skew plus a drift, both drawn per node. Wall time feeds HLC
/// stamps (so skew decides concurrent conflicts, as it would in production); monotonic time
/// feeds membership timeouts and tombstone grace.
struct SimClock {
    static let epochMillis: Int64 = 1_700_000_000_000
    var skewMillis: Int64 = 0
    var driftPPM: Int64 = 0

    func wall(_ now: Int64) -> Int64 { Self.epochMillis + monotonic(now) + skewMillis }
    func monotonic(_ now: Int64) -> Int64 { now + now * driftPPM / 1_000_000 }
}

/// What survives a crash: the fsync'd log (kept merged per key, which replays to the same
/// state because merge is associative, commutative and idempotent) and the replication marks.
struct SimDisk {
    var records: [String: Record] = [:]
    var collectionHorizon = HLCTimestamp.zero
    var lastSync = HLCTimestamp.zero
}

/// The write-ahead log's group commit, as `WriteAheadLog` does it: appends queue up; one flush
/// at a time takes everything queued, and only when its fsync completes are those entries
/// durable and their writers acknowledged. A crash loses the queue and the flush in progress.
struct SimWAL {
    private(set) var pending: [Record] = []
    private(set) var flushing: (through: UInt64, records: [Record])?
    private(set) var appendedSeq: UInt64 = 0
    private(set) var durableSeq: UInt64 = 0

    /// Queues a record; returns its sequence and whether a flush must start now.
    mutating func append(_ record: Record) -> (seq: UInt64, startFlush: Bool) {
        appendedSeq += 1
        pending.append(record)
        return (appendedSeq, startFlushIfIdle())
    }

    /// Takes everything pending into a flush if none is running; true if one started.
    mutating func startFlushIfIdle() -> Bool {
        guard flushing == nil, !pending.isEmpty else { return false }
        flushing = (appendedSeq, pending)
        pending = []
        return true
    }

    /// The running flush's fsync returned: its records are on disk.
    mutating func completeFlush(into disk: inout SimDisk) -> Bool {
        guard let batch = flushing else { return false }
        for record in batch.records {
            disk.records[record.key] = disk.records[record.key].map { Record.merge($0, record) } ?? record
        }
        durableSeq = batch.through
        flushing = nil
        return startFlushIfIdle()
    }

    var queued: Int { pending.count + (flushing?.records.count ?? 0) }
}

/// One simulated node: the registry actor's state and the cluster shell's state, driven by
/// the same pure calls in the same order as `Registry` and `ClusterNode` make them.
///
/// The glue in `Registry+Replication`, `Registry+Reset` and `Registry+Tombstones` lives in the
/// actor and touches files, so its logic is replicated here line for line (see the comments
/// naming each original); the protocols themselves (`MembershipInstance`, `Replicator`,
/// `RegistryState`, `Record.merge`, the codecs) are the real ones.
struct SimNode {
    let index: Int
    let name: NodeID
    let address: String
    let generation: UInt64
    let clock: SimClock
    var membership: MembershipInstance
    let replicator: Replicator
    var state = RegistryState()
    var hlc = HybridLogicalClock()
    var lastSync = HLCTimestamp.zero
    var lastMarksSave: Int64 = 0
    var tombstoneSeen: [String: Int64] = [:]
    var forgotten: [String: (hash: UInt64, until: Int64)] = [:]
    var heartbeats: [String: Int64] = [:]
    var rumorOutbox: [Record] = []
    var renewalOutbox: [LeaseRenewal] = []
    var rumorFlushScheduled = false
    var renewalFlushScheduled = false
    var wal = SimWAL()
    var rng: SplitMix64
    var caughtUp = false
    var firstSyncStarted = false

    /// Starts a life of the node from what its disk holds, as `Registry.open` does.
    init(
        index: Int, name: NodeID, address: String, generation: UInt64, clock: SimClock, disk: SimDisk,
        membershipSettings: MembershipSettings, replicationSettings: ReplicationSettings, seed: UInt64, now: Int64
    ) {
        self.index = index
        self.name = name
        self.address = address
        self.generation = generation
        self.clock = clock
        membership = MembershipInstance(
            myself: MemberIdentity(name: name, generation: generation, address: address), settings: membershipSettings,
            seed: seed)
        replicator = Replicator(node: name, settings: replicationSettings)
        rng = SplitMix64(seed: seed ^ 0x5EED)
        // Registry.restore: replay in key order (any order gives the same state), then the marks.
        let mono = clock.monotonic(now)
        for key in disk.records.keys.sorted() {
            guard let record = disk.records[key] else { continue }
            hlc.observe(record.stamp)
            state.apply(record)
            trackTombstone(record, now: mono)
        }
        state.collectionHorizon = max(state.collectionHorizon, disk.collectionHorizon)
        lastSync = max(lastSync, disk.lastSync)
    }

    /// Live peers by name, excluding this node: the targets of replication (`ClusterNode.livePeers`).
    var livePeers: [NodeID] {
        membership.livePeerNames
    }

    /// What the bounds watch looks at: log entries awaiting fsync, outboxes, members known, and
    /// the largest of records, tombstone marks and forgotten keys.
    var bufferSizes: (log: Int, rumors: Int, renewals: Int, members: Int, records: Int) {
        (wal.queued, rumorOutbox.count, renewalOutbox.count, membership.memberCount,
         max(state.records.count, tombstoneSeen.count, forgotten.count))
    }

    // MARK: - Registry.commitLocal

    /// The least counter this life of the node issues, as `Registry` does (fixed for seed 1008).
    /// Without it, a write lost in a crash before its fsync (but already rumored) left its
    /// counter to be issued again after the restart, to a different version: a peer's later
    /// write on top of the lost one then dominated an acknowledged deregistration made after
    /// the restart, and the instance came back.
    var counterFloor: UInt64 { VectorClock.counterFloor(generation: generation) }

    /// Writes a new version of `key` here. Returns the record and the log sequence to wait on,
    /// and whether the log must start a flush.
    mutating func commitLocal(key: String, serviceName: String, instance: ServiceInstance?, now: Int64)
        -> (record: Record, seq: UInt64, startFlush: Bool)
    {
        let stamp = hlc.tick(physicalMillis: clock.wall(now))
        let record = state.nextRecord(
            key: key, serviceName: serviceName, instance: instance, node: name, stamp: stamp, counterFloor: counterFloor)
        guard let change = state.apply(record) else {
            preconditionFailure("a record that causally follows what is held must change the state")
        }
        noteApplied(change, now: now)
        let (seq, startFlush) = wal.append(change.current)
        rumorOutbox.append(change.current)
        return (change.current, seq, startFlush)
    }

    /// `Registry.noteApplied`, the parts that affect replication: tombstone tracking and the
    /// local heartbeat overlay.
    mutating func noteApplied(_ change: RegistryState.Change, now: Int64) {
        trackTombstone(change.current, now: clock.monotonic(now))
        if change.current.instance == nil { heartbeats[change.current.key] = nil }
    }

    // MARK: - Registry+Replication

    /// `Registry.applyRenewals`: only the shown heartbeat time here; no TTL checks are simulated.
    mutating func applyRenewals(_ renewals: [LeaseRenewal]) {
        for renewal in renewals {
            guard let instance = state.instance(renewal.instanceID) else { continue }
            if renewal.checkIDs.isEmpty && renewal.wallMillis > (heartbeats[renewal.instanceID] ?? instance.lastHeartbeat.millisecondsSinceEpoch) {
                heartbeats[renewal.instanceID] = renewal.wallMillis
            }
        }
    }

    /// `Registry.applyRemote`: merges records from a peer, logs each that changed something
    /// (not waited for), and returns those for rumor forwarding.
    mutating func applyRemote(_ records: [Record], now: Int64) -> (changed: [Record], startFlush: Bool) {
        var changed: [Record] = []
        var startFlush = false
        for record in records {
            hlc.observe(record.stamp)
            guard !wasCollected(record), let change = state.apply(record) else { continue }
            noteApplied(change, now: now)
            startFlush = wal.append(change.current).startFlush || startFlush
            changed.append(change.current)
        }
        return (changed, startFlush)
    }

    /// `Registry.handleDigest`: reset if stale, note the contact, then either refuse to
    /// reconcile with a stale sender or run the protocol.
    mutating func handleDigest(_ message: ReplicationMessage, from peer: NodeID, disk: inout SimDisk, now: Int64)
        -> (directives: [ReplicationDirective], inSync: Bool, dropped: Int)
    {
        guard case .digest(let root, _, let horizon, let peerLastSync) = message else { return ([], false, 0) }
        let dropped = resetIfStale(peerHorizon: horizon, disk: &disk)
        noteSynced(disk: &disk, now: now)
        if peerLastSync < state.collectionHorizon {
            return ([.send(replicator.digest(of: state, lastSync: lastSync), to: peer)], false, dropped)
        }
        return (replicator.receive(message, from: peer, state: state), root == state.digest.root, dropped)
    }

    // MARK: - Registry+Reset

    /// `Registry.resetIfStale`. The forced snapshot is modelled as the disk taking the state.
    mutating func resetIfStale(peerHorizon: HLCTimestamp, disk: inout SimDisk) -> Int {
        guard peerHorizon > lastSync else { return 0 }
        let dropped = state.drop { $0.stamp <= peerHorizon }
        lastSync = peerHorizon
        saveMarks(disk: &disk, now: nil)
        guard !dropped.isEmpty else { return 0 }
        for record in dropped {
            tombstoneSeen[record.key] = nil
            heartbeats[record.key] = nil
        }
        // snapshotIfNeeded(force: true): the snapshot holds the state as it is now, and the log
        // segments before it (which still held the dropped records) are removed.
        disk.records = state.records
        return dropped.count
    }

    /// `Registry.noteSynced`: the marks reach disk at most every 10 s, as in the node.
    mutating func noteSynced(disk: inout SimDisk, now: Int64) {
        lastSync = max(lastSync, hlc.last)
        let mono = clock.monotonic(now)
        if mono - lastMarksSave >= 10_000 { saveMarks(disk: &disk, now: now) }
    }

    /// `Registry.saveMarks` (write to a temporary file, then rename).
    mutating func saveMarks(disk: inout SimDisk, now: Int64?) {
        if let now { lastMarksSave = clock.monotonic(now) }
        disk.collectionHorizon = state.collectionHorizon
        disk.lastSync = lastSync
    }

    // MARK: - Registry+Tombstones

    /// `Registry.collectTombstones(grace:)`.
    mutating func collectTombstones(graceMillis: Int64, disk: inout SimDisk, now: Int64) -> [Record] {
        let mono = clock.monotonic(now)
        forgotten = forgotten.filter { $0.value.until > mono }
        let due = Set(tombstoneSeen.filter { mono - $0.value >= graceMillis }.map(\.key))
        guard !due.isEmpty else { return [] }
        let doomed = due.sorted().compactMap { key in state.record(for: key).flatMap { $0.isTombstone ? $0 : nil } }
        for key in due {
            if let hash = state.recordHash(for: key) { forgotten[key] = (hash, mono + graceMillis) }
            tombstoneSeen[key] = nil
        }
        _ = state.collectTombstones { due.contains($0.key) }
        saveMarks(disk: &disk, now: now)
        return doomed
    }

    /// `Registry.wasCollected`.
    func wasCollected(_ record: Record) -> Bool {
        guard let entry = forgotten[record.key] else { return false }
        return entry.hash == StateDigest.hash(of: record)
    }

    /// `Registry.trackTombstone`, as fixed for seed 125: the grace period runs from when this
    /// node first held *this version* of the tombstone. Keeping the first tombstone's time when
    /// a newer tombstone replaced it collected the newer one early, and its fresh stamp became
    /// a collection horizon that reset nodes away for far less than the grace period, dropping
    /// writes they had acknowledged and not yet spread.
    mutating func trackTombstone(_ record: Record, now mono: Int64) {
        if record.isTombstone {
            tombstoneSeen[record.key] = mono
        } else {
            tombstoneSeen[record.key] = nil
        }
    }
}
