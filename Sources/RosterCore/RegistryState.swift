/// The registry's replicated state: the latest record of every key, tombstones included, and
/// the indexes over the live instances. A value type with no I/O: the node's actor owns one,
/// and so does every simulated node.
public struct RegistryState: Sendable {
    public private(set) var records: [String: Record] = [:]
    private var index = InstanceIndex()
    public private(set) var liveCount = 0
    /// Anti-entropy fingerprint, kept current by every change.
    public private(set) var digest = StateDigest()
    /// The highest stamp among tombstones collected here. A peer whose last sync predates it may
    /// hold instances whose deletion this node has forgotten (see `Registry.resetIfStale`).
    public var collectionHorizon = HLCTimestamp.zero
    /// Each record's hash, so a replaced record can be XORed out of its bucket.
    private var hashes: [String: UInt64] = [:]
    private var keysByBucket: [Int: Set<String>] = [:]

    public init() {}

    /// What a merge changed.
    public struct Change: Sendable, Equatable {
        public var previous: Record?
        public var current: Record
        /// The incoming version was concurrent with the one held: the fixed rule decided.
        public var resolvedConflict = false
    }

    // MARK: - Writes

    /// Merges `incoming` with what is held for its key. Returns nil when nothing changed, which
    /// is what makes replaying a log or receiving a duplicate harmless.
    @discardableResult
    public mutating func apply(_ incoming: Record) -> Change? {
        let previous = records[incoming.key]
        let merged = previous.map { Record.merge($0, incoming) } ?? incoming
        // The hash is needed for the digest anyway, and comparing it is far cheaper than
        // comparing whole records (the same 64-bit trust the digest already places in it).
        let hash = StateDigest.hash(of: merged)
        if previous != nil && hashes[incoming.key] == hash { return nil }
        records[incoming.key] = merged
        digest.replace(key: incoming.key, old: hashes[incoming.key], new: hash)
        if hashes[incoming.key] == nil { keysByBucket[StateDigest.bucket(of: incoming.key), default: []].insert(incoming.key) }
        hashes[incoming.key] = hash
        index.update(key: incoming.key, from: previous?.instance, to: merged.instance)
        liveCount += (merged.isTombstone ? 0 : 1) - (previous.map { $0.isTombstone ? 0 : 1 } ?? 0)
        let concurrent = previous.map { $0.clock.compare(to: incoming.clock) == .concurrent } ?? false
        return Change(previous: previous, current: merged, resolvedConflict: concurrent)
    }

    /// The next version of `key` written at `node`: it causally follows what this state holds.
    public func nextRecord(
        key: String, serviceName: String, instance: ServiceInstance?, node: NodeID, stamp: HLCTimestamp,
        counterFloor: UInt64 = 0
    ) -> Record {
        let clock = (records[key]?.clock ?? VectorClock()).incremented(at: node, atLeast: counterFloor)
        return Record(key: key, serviceName: serviceName, instance: instance, clock: clock, stamp: stamp, origin: node)
    }

    /// Drops tombstones that `shouldCollect` picks; the shell decides by its own monotonic clock.
    public mutating func collectTombstones(where shouldCollect: (Record) -> Bool) -> Int {
        let doomed = records.values.filter { $0.isTombstone && shouldCollect($0) }
        for record in doomed { collectionHorizon = max(collectionHorizon, record.stamp) }
        return drop(where: { record in doomed.contains { $0.key == record.key } }).count
    }

    /// Forgets records entirely, live or not, without leaving tombstones: for collection and for
    /// a stale node's reset. Returns what was dropped.
    @discardableResult
    public mutating func drop(where shouldDrop: (Record) -> Bool) -> [Record] {
        let doomed = records.values.filter(shouldDrop)
        for record in doomed {
            records[record.key] = nil
            digest.replace(key: record.key, old: hashes.removeValue(forKey: record.key), new: nil)
            keysByBucket[StateDigest.bucket(of: record.key)]?.remove(record.key)
            index.update(key: record.key, from: record.instance, to: nil)
            if !record.isTombstone { liveCount -= 1 }
        }
        return doomed
    }

    // MARK: - Reads

    public func record(for key: String) -> Record? { records[key] }

    /// The hash of the version held for `key`, as anti-entropy compares it.
    public func recordHash(for key: String) -> UInt64? { hashes[key] }

    /// Keys and record hashes in one digest bucket.
    public func summary(ofBucket bucket: Int) -> [(key: String, hash: UInt64)] {
        keysByBucket[bucket, default: []].sorted().compactMap { key in hashes[key].map { (key, $0) } }
    }

    public func instance(_ id: String) -> ServiceInstance? { records[id]?.instance }

    /// Instances matching every filter, ordered by instance id so answers are stable.
    public func query(_ filter: InstanceFilter) -> [ServiceInstance] {
        let keys: [String]
        if filter.equals.isEmpty {
            keys = records.values.compactMap { $0.isTombstone ? nil : $0.key }
        } else {
            // Intersect from the smallest set, so the work is bounded by the most selective filter.
            let sets = filter.equals.map { index.keys($0.0, $0.1) }.sorted { $0.count < $1.count }
            var candidates = sets[0]
            for set in sets.dropFirst() where !candidates.isEmpty { candidates.formIntersection(set) }
            keys = Array(candidates)
        }
        return keys.sorted().compactMap { key in
            guard let instance = records[key]?.instance, filter.matches(instance) else { return nil }
            return instance
        }
    }

    /// Service name → instance count, for services with at least one live instance.
    public var serviceCounts: [String: Int] {
        index.values(.service).mapValues(\.count)
    }

    /// Service name → the union of its instances' tags, as Consul's catalog lists them.
    public func serviceTags() -> [String: [String]] {
        var result: [String: Set<String>] = [:]
        for (service, keys) in index.values(.service) {
            var tags = Set<String>()
            for key in keys { tags.formUnion(records[key]?.instance?.tags ?? []) }
            result[service] = tags
        }
        return result.mapValues { $0.sorted() }
    }
}
