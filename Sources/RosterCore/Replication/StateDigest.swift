/// A compact fingerprint of a registry state for anti-entropy: the key space is split into
/// fixed buckets, and each bucket's hash is the XOR of its records' hashes.
///
/// XOR makes the digest independent of the order records arrived in and cheap to maintain: a
/// changed record updates its bucket with two XORs. Two nodes with equal root hashes hold the
/// same records; when roots differ, comparing 256 bucket hashes narrows the exchange to the
/// buckets that differ. Unlike per-origin version watermarks, this cannot skip a key that a
/// dead node superseded (DESIGN.md's watermark pitfall): any difference shows in some bucket.
public struct StateDigest: Sendable, Equatable {
    public static let bucketCount = 256
    public private(set) var buckets: [UInt64] = Array(repeating: 0, count: StateDigest.bucketCount)

    public init() {}

    /// The hash over all buckets: equal roots mean equal states (with 64-bit collision odds).
    public var root: UInt64 {
        var h = FNV1a()
        for bucket in buckets { h.add(bucket) }
        return h.value
    }

    public static func bucket(of key: String) -> Int {
        var h = FNV1a()
        h.add(key.utf8)
        return Int(h.value % UInt64(bucketCount))
    }

    /// The hash of one record version, over its full encoding.
    public static func hash(of record: Record) -> UInt64 {
        var h = FNV1a()
        h.add(RecordCodec.encode(record))
        // Never zero, so a bucket holding one record never looks empty.
        return h.value | 1
    }

    mutating func replace(key: String, old: UInt64?, new: UInt64?) {
        let b = StateDigest.bucket(of: key)
        if let old { buckets[b] ^= old }
        if let new { buckets[b] ^= new }
    }

    /// Indices of buckets whose hashes differ from `other`'s.
    public func differingBuckets(_ other: [UInt64]) -> [Int] {
        guard other.count == buckets.count else { return Array(0..<buckets.count) }
        return (0..<buckets.count).filter { buckets[$0] != other[$0] }
    }
}

/// 64-bit FNV-1a: tiny and deterministic across processes (unlike Swift's seeded `Hasher`).
struct FNV1a {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func add(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            for byte in buffer {
                value ^= UInt64(byte)
                value &*= 0x0000_0100_0000_01B3
            }
        }
    }

    mutating func add(_ bytes: String.UTF8View) {
        for byte in bytes {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01B3
        }
    }

    mutating func add(_ word: UInt64) {
        var w = word
        for _ in 0..<8 {
            value ^= w & 0xFF
            value &*= 0x0000_0100_0000_01B3
            w >>= 8
        }
    }
}
