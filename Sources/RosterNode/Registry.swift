import Foundation
import Logging
import RosterCore

/// What a blocking query waits on: one service's changes, or any change.
public enum WatchScope: Hashable, Sendable {
    case all
    case service(String)
}

/// The result of an acknowledged write.
public struct WriteResult: Sendable {
    /// The instance after the write; nil after a deregistration.
    public var instance: ServiceInstance?
    public var created: Bool
    /// The modify index the write applied at; nil if nothing had to change.
    public var index: UInt64?
}

/// The registry actor: the one owner of a node's registry state.
///
/// Every write goes the same way: the pure core decides the new value, the value becomes the
/// next record (vector clock incremented at this node, HLC stamp), the record is merged into the
/// state and appended to the write-ahead log, and the caller is answered only after the log
/// entry is fsync'd. The actor never suspends in the middle of a write, so writes are atomic
/// with respect to each other; the durability wait happens outside its isolation, which lets
/// many writes share one fsync.
public actor Registry {
    public nonisolated let nodeID: NodeID
    public nonisolated let feed: ChangeFeed
    nonisolated let wal: WriteAheadLog
    let dataDir: String
    let clock: NodeClock
    let logger: Logger
    let metrics = RegistryMetrics()

    var state = RegistryState()
    var hlc = HybridLogicalClock()
    /// The change indexes: raised by every applied change, restored from disk on restart so that
    /// blocking-query indexes never go backwards. Readable without an actor hop.
    public nonisolated let indexes = ChangeIndexes()
    /// The local modify index.
    public var modifyIndex: UInt64 { indexes.current }
    var keyIndexes: [String: UInt64] = [:]
    var timers = CheckTimers()
    /// The cluster as the membership shell last described it: who owns which checks, and
    /// whether this node is in self-preservation. Until the first description, this node
    /// judges only the instances registered through it.
    var view: ClusterView
    /// Instances that have checks, so that ownership changes and the probe list need not
    /// scan instances without any.
    var checkedInstances: Set<String> = []
    /// Consecutive probe outcomes of the checks this node runs: instance id → check id → progress.
    var probeProgress: [String: [String: CheckProgress]] = [:]
    /// Raised whenever the set of checks this node runs may have changed, so that the health
    /// monitor re-reads it only then.
    public nonisolated let checkVersion = VersionCounter()
    /// Raised whenever ownership may have moved (a new cluster view): the monitor acts on this
    /// at once, so a node hands checks back without probing alongside their owner.
    public nonisolated let ownershipVersion = VersionCounter()
    let healthMetrics = HealthMetrics()
    /// Last heartbeat times renewed locally; overlaid on reads instead of replicated per beat.
    var heartbeats: [String: Timestamp] = [:]
    /// When this node first held each tombstone, on its monotonic clock.
    var tombstoneSeen: [String: Int64] = [:]
    /// Recently collected tombstones: key → (record hash, remember until).
    var forgotten: [String: (hash: UInt64, until: Int64)] = [:]
    /// The highest modify index among collected tombstones: a watcher behind it missed a deletion.
    var collectedThroughIndex: UInt64 = 0
    /// This node's HLC when it last heard a peer's digest (after checking its horizon).
    var lastSync = HLCTimestamp.zero
    var lastMarksSave: Int64 = 0
    var waiters: [WatchScope: [UUID: CheckedContinuation<Void, Never>]] = [:]
    var snapshotRunning = false
    var shuttingDown = false
    /// Receives every record written at this node, for rumor mongering; set by the cluster.
    var onLocalCommit: (@Sendable ([Record]) -> Void)?
    /// Receives every lease renewal heard at this node, for batching to peers; set by the cluster.
    var onRenewal: (@Sendable (LeaseRenewal) -> Void)?
    /// When a snapshot is taken and older log segments are dropped.
    let snapshotPolicy: SnapshotPolicy
    /// The size of the last snapshot, which sets how much log is worth keeping.
    var lastSnapshotBytes = 0
    /// The least vector-clock counter this life of the node issues (see `VectorClock.counterFloor`).
    let counterFloor: UInt64
    /// Whether the data dir held state from an earlier life: peers may still see that life as
    /// failed when this one settles (see `updateView`).
    var hadEarlierLife = false

    init(
        nodeID: NodeID, dataDir: String, wal: WriteAheadLog, clock: NodeClock, logger: Logger, snapshotPolicy: SnapshotPolicy,
        generation: UInt64
    ) {
        self.counterFloor = VectorClock.counterFloor(generation: generation)
        self.nodeID = nodeID
        self.dataDir = dataDir
        self.wal = wal
        self.clock = clock
        self.logger = logger
        self.feed = ChangeFeed()
        self.snapshotPolicy = snapshotPolicy
        self.view = ClusterView(me: nodeID, live: [nodeID], down: [], known: 1, settled: false)
    }

    /// Opens the registry in `dataDir`: loads the snapshot, replays the log, cuts off a torn
    /// tail, then starts a fresh log segment. `generation` is this start's (`NodeGeneration`).
    public static func open(
        nodeID: NodeID, dataDir: String, generation: UInt64 = 0, clock: NodeClock = .system, logger: Logger,
        snapshotPolicy: SnapshotPolicy = SnapshotPolicy()
    ) async throws -> Registry {
        let recovered = try Recovery.load(dataDir: dataDir)
        if let (segment, dropped) = recovered.truncatedTail {
            logger.warning("cut off a torn tail of \(dropped) bytes from log segment \(segment): a write in flight at a crash, never acknowledged")
        }
        let wal = try WriteAheadLog(
            directory: "\(dataDir)/wal", lastSegment: recovered.lastSegment, carriedBytes: recovered.logBytes)
        let registry = Registry(
            nodeID: nodeID, dataDir: dataDir, wal: wal, clock: clock, logger: logger,
            snapshotPolicy: snapshotPolicy, generation: generation)
        await registry.restore(recovered)
        return registry
    }

    private func restore(_ recovered: RecoveredState) {
        lastSnapshotBytes = recovered.snapshotBytes
        if let snapshot = recovered.snapshot {
            indexes.restore(global: snapshot.maxIndex, services: snapshot.serviceIndexes)
            for entry in snapshot.entries { replay(entry) }
        }
        for entry in recovered.logEntries { replay(entry) }
        hadEarlierLife = !state.records.isEmpty
        loadMarks()
        let now = clock.monotonicMillis()
        for record in state.records.values {
            guard let instance = record.instance, !instance.checks.isEmpty else { continue }
            checkedInstances.insert(instance.instanceID)
            guard owns(instance) else { continue }
            // A restart re-arms every TTL with a full period: the time the node was down is
            // not the services' fault, and no wall clock is trusted across the gap.
            armTTLChecks(of: instance, now: now)
            timers.observe(instance, now: now)
        }
        metrics.reset(from: state)
        logger.info(
            "recovered registry",
            metadata: [
                "instances": "\(state.liveCount)", "records": "\(state.records.count)",
                "snapshot": "\(recovered.snapshot != nil)", "log_entries": "\(recovered.logEntries.count)",
                "index": "\(modifyIndex)",
            ])
    }

    private func replay(_ entry: LogEntry) {
        hlc.observe(entry.record.stamp)
        state.apply(entry.record)
        // A restart starts every tombstone's grace period afresh: no clock survives the gap.
        trackTombstone(entry.record, now: clock.monotonicMillis())
        keyIndexes[entry.record.key] = entry.index
        indexes.restore(global: entry.index, services: [entry.record.serviceName: entry.index])
    }

    // MARK: - Applying changes

    /// Writes a new version of `key` made at this node. Returns the log sequence to wait on.
    func commitLocal(key: String, serviceName: String, instance: ServiceInstance?) -> (index: UInt64, seq: UInt64) {
        let stamp = hlc.tick(physicalMillis: clock.wallMillis())
        let record = state.nextRecord(
            key: key, serviceName: serviceName, instance: instance, node: nodeID, stamp: stamp, counterFloor: counterFloor)
        // A record that causally follows what we hold always changes the state.
        let change = state.apply(record)!
        let index = noteApplied(change)
        let seq = wal.append(LogEntry(index: index, record: change.current))
        onLocalCommit?([change.current])
        return (index, seq)
    }

    /// Bookkeeping after any applied change: indexes, timers, metrics, events and waiters.
    func noteApplied(_ change: RegistryState.Change) -> UInt64 {
        let record = change.current
        let movedFrom = change.previous.map(\.serviceName).flatMap { $0 == record.serviceName ? nil : $0 }
        let index = indexes.bump([record.serviceName] + (movedFrom.map { [$0] } ?? []))
        keyIndexes[record.key] = index
        if let movedFrom { wake(.service(movedFrom)) }
        let now = clock.monotonicMillis()
        trackTombstone(record, now: now)
        noteChecks(of: record.key, instance: record.instance, now: now)
        if record.isTombstone { heartbeats[record.key] = nil }
        metrics.update(from: change.previous?.instance, to: record.instance)
        let kind: ChangeEvent.Kind =
            record.isTombstone ? .deregistered : (change.previous?.instance == nil ? .registered : .updated)
        feed.publish(
            ChangeEvent(
                index: index, kind: kind, serviceName: record.serviceName, instanceID: record.key,
                instance: record.instance))
        wake(.service(record.serviceName))
        wake(.all)
        return index
    }

    func armTTLChecks(of instance: ServiceInstance, now: Int64, only checkID: String? = nil) {
        for check in instance.checks where check.kind == .ttl && (checkID == nil || check.checkID == checkID) {
            if let ttl = check.ttl {
                timers.renew(.init(instanceID: instance.instanceID, checkID: check.checkID), ttl: ttl, now: now)
            }
        }
    }

    /// The instance as clients see it: with the latest locally renewed heartbeat time.
    func present(_ instance: ServiceInstance) -> ServiceInstance {
        guard let beat = heartbeats[instance.instanceID], beat > instance.lastHeartbeat else { return instance }
        var shown = instance
        shown.lastHeartbeat = beat
        return shown
    }
}
