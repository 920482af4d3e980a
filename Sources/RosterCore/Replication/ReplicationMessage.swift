/// A key and the hash of the version a node holds for it.
public struct KeyHash: Sendable, Hashable {
    public var key: String
    public var hash: UInt64
    public init(key: String, hash: UInt64) {
        self.key = key
        self.hash = hash
    }
}

/// The keys of one digest bucket with their hashes, as one side of an anti-entropy exchange.
public struct BucketSummary: Sendable, Hashable {
    public var bucket: Int
    public var entries: [KeyHash]
    public init(bucket: Int, entries: [KeyHash]) {
        self.bucket = bucket
        self.entries = entries
    }
}

/// A lease renewal: `instanceID` heard a heartbeat or a check result at `wallMillis` (the
/// receiving node's wall clock, for display only), renewing `checkIDs` (empty: every TTL check).
/// The owner re-arms those TTLs on its own monotonic clock when the renewal arrives.
public struct LeaseRenewal: Sendable, Hashable {
    public var instanceID: String
    public var checkIDs: [String]
    public var wallMillis: Int64

    public init(instanceID: String, checkIDs: [String], wallMillis: Int64) {
        self.instanceID = instanceID
        self.checkIDs = checkIDs
        self.wallMillis = wallMillis
    }
}

/// Messages between replicas.
///
/// Anti-entropy runs in up to four steps, each only if the previous found a difference:
/// `digest` (root hash, a few bytes: all that idle traffic costs) → `bucketDigest` (256 hashes)
/// → `bucketSummaries` (keys and hashes of the differing buckets) → `records` (the versions that
/// differ, plus the keys wanted back). Rumors carry new records straight away.
public enum ReplicationMessage: Sendable, Equatable {
    case rumor(records: [Record], hops: UInt8)
    /// `horizon` is the sender's collection horizon: a receiver that last synced before it was
    /// away while deletions it may have missed were forgotten, and must reset. `lastSync` is when
    /// the sender last heard a peer: a receiver whose horizon is later must not take its records.
    case digest(root: UInt64, count: UInt64, horizon: HLCTimestamp, lastSync: HLCTimestamp)
    case bucketDigest([UInt64])
    case bucketSummaries([BucketSummary])
    case records([Record], wanted: [String])
    /// Renewals heard since the last batch: heartbeats never become one message each.
    case renewals([LeaseRenewal])

    private enum Tag: UInt8 {
        case rumor = 1, digest, bucketDigest, bucketSummaries, records, renewals
    }

    public func encode(into w: inout ByteWriter) {
        switch self {
        case .rumor(let records, let hops):
            w.write(Tag.rumor.rawValue)
            w.write(hops)
            ReplicationMessage.write(records, into: &w)
        case .digest(let root, let count, let horizon, let lastSync):
            w.write(Tag.digest.rawValue)
            w.write(root)
            w.writeVarint(count)
            for stamp in [horizon, lastSync] {
                w.writeSigned(stamp.physicalMillis)
                w.writeVarint(UInt64(stamp.logical))
            }
        case .bucketDigest(let buckets):
            w.write(Tag.bucketDigest.rawValue)
            w.writeVarint(UInt64(buckets.count))
            for b in buckets { w.write(b) }
        case .bucketSummaries(let summaries):
            w.write(Tag.bucketSummaries.rawValue)
            w.writeVarint(UInt64(summaries.count))
            for s in summaries {
                w.writeVarint(UInt64(s.bucket))
                w.writeVarint(UInt64(s.entries.count))
                for e in s.entries {
                    w.write(e.key)
                    w.write(e.hash)
                }
            }
        case .records(let records, let wanted):
            w.write(Tag.records.rawValue)
            ReplicationMessage.write(records, into: &w)
            w.write(wanted)
        case .renewals(let renewals):
            w.write(Tag.renewals.rawValue)
            w.writeVarint(UInt64(renewals.count))
            for renewal in renewals {
                w.write(renewal.instanceID)
                w.write(renewal.checkIDs)
                w.writeSigned(renewal.wallMillis)
            }
        }
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        encode(into: &w)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodingFailure) -> ReplicationMessage {
        var r = ByteReader(bytes)
        let message = try decode(from: &r)
        guard r.remaining == 0 else { throw DecodingFailure("\(r.remaining) trailing bytes after a replication message") }
        return message
    }

    public static func decode(from r: inout ByteReader) throws(DecodingFailure) -> ReplicationMessage {
        let raw = try r.readByte()
        guard let tag = Tag(rawValue: raw) else { throw DecodingFailure("unknown replication message type \(raw)") }
        switch tag {
        case .rumor:
            let hops = try r.readByte()
            return .rumor(records: try readRecords(&r), hops: hops)
        case .digest:
            let root = try r.readUInt64()
            let count = try r.readVarint()
            var stamps: [HLCTimestamp] = []
            for _ in 0..<2 {
                let physical = try r.readSigned()
                let logical = try r.readVarint()
                guard logical <= UInt64(UInt32.max) else { throw DecodingFailure("digest logical clock out of range") }
                stamps.append(HLCTimestamp(physicalMillis: physical, logical: UInt32(logical)))
            }
            return .digest(root: root, count: count, horizon: stamps[0], lastSync: stamps[1])
        case .bucketDigest:
            let n = try r.readCount()
            guard n <= StateDigest.bucketCount else { throw DecodingFailure("\(n) buckets, at most \(StateDigest.bucketCount)") }
            var buckets: [UInt64] = []
            for _ in 0..<n { buckets.append(try r.readUInt64()) }
            return .bucketDigest(buckets)
        case .bucketSummaries:
            var summaries: [BucketSummary] = []
            for _ in 0..<(try r.readCount()) {
                let bucket = try r.readVarint()
                guard bucket < StateDigest.bucketCount else { throw DecodingFailure("bucket \(bucket) out of range") }
                var entries: [KeyHash] = []
                for _ in 0..<(try r.readCount()) { entries.append(KeyHash(key: try r.readString(), hash: try r.readUInt64())) }
                summaries.append(BucketSummary(bucket: Int(bucket), entries: entries))
            }
            return .bucketSummaries(summaries)
        case .records:
            let records = try readRecords(&r)
            return .records(records, wanted: try r.readStringList())
        case .renewals:
            var renewals: [LeaseRenewal] = []
            for _ in 0..<(try r.readCount()) {
                renewals.append(
                    LeaseRenewal(instanceID: try r.readString(), checkIDs: try r.readStringList(), wallMillis: try r.readSigned()))
            }
            return .renewals(renewals)
        }
    }

    private static func write(_ records: [Record], into w: inout ByteWriter) {
        w.writeVarint(UInt64(records.count))
        for record in records { RecordCodec.encode(record, into: &w) }
    }

    private static func readRecords(_ r: inout ByteReader) throws(DecodingFailure) -> [Record] {
        var records: [Record] = []
        for _ in 0..<(try r.readCount()) { records.append(try RecordCodec.decode(from: &r)) }
        return records
    }
}
