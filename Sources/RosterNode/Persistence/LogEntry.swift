import RosterCore

/// One durable change: a record and the local modify index it was applied at.
///
/// On disk: `[u32 length][u32 CRC-32C of payload][payload]`, payload = `[u64 index][record]`.
/// The length comes first so a reader can tell a torn tail (length runs past the end of the
/// file) from corruption in the middle (a complete entry whose CRC is wrong).
public struct LogEntry: Sendable, Equatable {
    public var index: UInt64
    public var record: Record

    public init(index: UInt64, record: Record) {
        self.index = index
        self.record = record
    }

    static let headerSize = 8
    /// Far above any valid record; a larger length can only be garbage.
    static let maxPayload = 4 << 20

    func encoded() -> [UInt8] {
        var payload = ByteWriter(capacity: 320)
        payload.write(index)
        RecordCodec.encode(record, into: &payload)
        var out = ByteWriter(capacity: payload.bytes.count + LogEntry.headerSize)
        out.write(UInt32(payload.bytes.count))
        out.write(CRC32C.checksum(payload.bytes))
        out.append(payload.bytes)
        return out.bytes
    }

    /// The result of scanning one log file.
    enum Scan {
        /// Every byte belonged to a valid entry.
        case clean([LogEntry])
        /// Valid entries, then an incomplete or unchecksummable tail starting at `validLength`.
        case tornTail([LogEntry], validLength: Int)
        /// A complete entry with a bad checksum or undecodable payload, followed by more data.
        case corrupt(offset: Int, reason: String)
    }

    static func scan(_ bytes: [UInt8]) -> Scan {
        var entries: [LogEntry] = []
        var offset = 0
        while offset < bytes.count {
            var reader = ByteReader(bytes, offset: offset)
            guard let length = try? reader.readUInt32(), let crc = try? reader.readUInt32() else {
                return .tornTail(entries, validLength: offset)
            }
            let end = offset + headerSize + Int(length)
            if length == 0 || Int(length) > maxPayload || end > bytes.count {
                // A zero or absurd length, or one that runs past the end: the write was cut off,
                // unless real data follows, which a torn write cannot produce.
                if length == 0 && bytes[offset...].contains(where: { $0 != 0 }) {
                    return .corrupt(offset: offset, reason: "zero-length entry followed by data")
                }
                return .tornTail(entries, validLength: offset)
            }
            let payload = Array(bytes[(offset + headerSize)..<end])
            let isLast = end == bytes.count
            guard CRC32C.checksum(payload) == crc else {
                return isLast ? .tornTail(entries, validLength: offset)
                    : .corrupt(offset: offset, reason: "checksum mismatch")
            }
            var payloadReader = ByteReader(payload)
            do {
                let index = try payloadReader.readUInt64()
                let record = try RecordCodec.decode(from: &payloadReader)
                entries.append(LogEntry(index: index, record: record))
            } catch {
                return .corrupt(offset: offset, reason: "\(error)")
            }
            offset = end
        }
        return .clean(entries)
    }
}
