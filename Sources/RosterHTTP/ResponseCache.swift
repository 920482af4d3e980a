import Foundation
import Hummingbird

/// Encoded bodies of hot reads, reused until the data behind them changes.
///
/// Discovery reads vastly outnumber writes, and encoding JSON dominates their cost. An entry is
/// valid only for the exact change index (and member-state fingerprint) it was built at, so a
/// cached answer is never staler than a fresh one would be. Bounded: when full, it is cleared.
final class ResponseCache: @unchecked Sendable {
    private struct Entry {
        var index: UInt64
        var fingerprint: Int
        var body: ByteBuffer
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private let capacity: Int

    init(capacity: Int = 4096) { self.capacity = capacity }

    func get(_ key: String, index: UInt64, fingerprint: Int) -> ByteBuffer? {
        lock.withLock {
            guard let entry = entries[key], entry.index == index, entry.fingerprint == fingerprint else { return nil }
            return entry.body
        }
    }

    func put(_ key: String, index: UInt64, fingerprint: Int, body: ByteBuffer) {
        lock.withLock {
            if entries.count >= capacity && entries[key] == nil { entries.removeAll(keepingCapacity: true) }
            entries[key] = Entry(index: index, fingerprint: fingerprint, body: body)
        }
    }
}
