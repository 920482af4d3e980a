import RosterCore

#if canImport(Glibc)
import Glibc
#endif

/// A point-in-time copy of the registry: every record with its local modify index, the
/// per-service change indexes, and the first log segment it does not cover.
///
/// Format: magic `RSNAP001`, `u64 nextSegment`, `u64 maxIndex`, the service index map, the
/// entries, and a trailing CRC-32C over everything before it. It is written to a temporary
/// file, fsync'd, renamed over the old one, and the directory fsync'd, so a crash leaves either
/// the old snapshot or the new one, never half of one.
public struct Snapshot: Sendable, Equatable {
    public var nextSegment: UInt64
    public var maxIndex: UInt64
    public var serviceIndexes: [String: UInt64]
    public var entries: [LogEntry]

    public init(nextSegment: UInt64, maxIndex: UInt64, serviceIndexes: [String: UInt64], entries: [LogEntry]) {
        self.nextSegment = nextSegment
        self.maxIndex = maxIndex
        self.serviceIndexes = serviceIndexes
        self.entries = entries
    }

    static let magic = Array("RSNAP001".utf8)

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + entries.count * 300)
        w.append(Snapshot.magic)
        w.write(nextSegment)
        w.write(maxIndex)
        w.writeVarint(UInt64(serviceIndexes.count))
        for name in serviceIndexes.keys.sorted() {
            w.write(name)
            w.writeVarint(serviceIndexes[name]!)
        }
        w.writeVarint(UInt64(entries.count))
        for entry in entries {
            w.writeVarint(entry.index)
            RecordCodec.encode(entry.record, into: &w)
        }
        w.write(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(DecodingFailure) -> Snapshot {
        guard bytes.count >= magic.count + 20, Array(bytes.prefix(magic.count)) == magic else {
            throw DecodingFailure("not a Roster snapshot (bad magic)")
        }
        let body = bytes[..<(bytes.count - 4)]
        var tail = ByteReader(Array(bytes.suffix(4)))
        guard try tail.readUInt32() == CRC32C.checksum(body) else { throw DecodingFailure("snapshot checksum mismatch") }
        var r = ByteReader(Array(body), offset: magic.count)
        let nextSegment = try r.readUInt64()
        let maxIndex = try r.readUInt64()
        var serviceIndexes: [String: UInt64] = [:]
        for _ in 0..<(try r.readCount()) {
            let name = try r.readString()
            serviceIndexes[name] = try r.readVarint()
        }
        var entries: [LogEntry] = []
        for _ in 0..<(try r.readCount()) {
            let index = try r.readVarint()
            entries.append(LogEntry(index: index, record: try RecordCodec.decode(from: &r)))
        }
        return Snapshot(nextSegment: nextSegment, maxIndex: maxIndex, serviceIndexes: serviceIndexes, entries: entries)
    }

    // MARK: - Files

    static func path(in dataDir: String) -> String { "\(dataDir)/snapshot.bin" }

    /// Writes the snapshot durably (temporary file, fsync, rename, directory fsync); returns
    /// its size in bytes.
    func write(to dataDir: String) throws(FileError) -> Int {
        let final = Snapshot.path(in: dataDir)
        let temporary = final + ".tmp"
        let fd = try FileIO.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
        let bytes = encoded()
        do throws(FileError) {
            try FileIO.writeAll(fd, bytes, path: temporary)
            if fsync(fd) != 0 { throw FileError(operation: "fsync", path: temporary, errnoValue: errno) }
            close(fd)
        } catch {
            close(fd)
            throw error
        }
        try FileIO.rename(temporary, final)
        try FileIO.syncDirectory(dataDir)
        return bytes.count
    }
}

/// What recovery found on disk, and what it had to repair.
public struct RecoveredState: Sendable {
    public var snapshot: Snapshot?
    /// The snapshot file's size, 0 without one.
    public var snapshotBytes = 0
    /// Entries from log segments not covered by the snapshot, in log order.
    public var logEntries: [LogEntry]
    /// The size of those segments, after any torn tail was cut off.
    public var logBytes = 0
    public var lastSegment: UInt64
    /// Set when a torn tail was cut off: the segment and the bytes dropped.
    public var truncatedTail: (segment: UInt64, droppedBytes: Int)?
}

/// Why the node refuses to start on its data: something other than a torn tail is wrong.
public struct RecoveryError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

public enum Recovery {
    /// Loads the snapshot and the log segments after it. A torn tail of the newest segment is cut
    /// off (a crash mid-write); corruption anywhere else stops the start, because silently
    /// skipping it could drop acknowledged writes.
    public static func load(dataDir: String) throws -> RecoveredState {
        try FileIO.makeDirectory(dataDir)
        let snapshotPath = Snapshot.path(in: dataDir)
        var snapshot: Snapshot?
        var snapshotBytes = 0
        if FileIO.exists(snapshotPath) {
            do {
                let bytes = try FileIO.readAll(snapshotPath)
                snapshotBytes = bytes.count
                snapshot = try Snapshot.decode(bytes)
            } catch {
                throw RecoveryError(
                    message: "the snapshot \(snapshotPath) is unreadable (\(error)); move it aside to start from the log alone")
            }
        }
        let walDir = "\(dataDir)/wal"
        let segments = try WriteAheadLog.segments(in: walDir)
        let firstNeeded = snapshot?.nextSegment ?? 0
        var entries: [LogEntry] = []
        var logBytes = 0
        var truncated: (UInt64, Int)?
        for (position, segment) in segments.enumerated() where segment >= firstNeeded {
            let path = WriteAheadLog.segmentPath(walDir, segment)
            let bytes = try FileIO.readAll(path)
            switch LogEntry.scan(bytes) {
            case .clean(let found):
                entries.append(contentsOf: found)
                logBytes += bytes.count
            case .tornTail(let found, let validLength):
                guard position == segments.count - 1 else {
                    throw RecoveryError(
                        message: "log segment \(path) is cut short at byte \(validLength) but newer segments follow: "
                            + "the log is corrupt. Restore the data directory from a peer or a backup.")
                }
                entries.append(contentsOf: found)
                logBytes += validLength
                try FileIO.truncate(path, to: validLength)
                truncated = (segment, bytes.count - validLength)
            case .corrupt(let offset, let reason):
                throw RecoveryError(
                    message: "log segment \(path) is corrupt at byte \(offset) (\(reason)) with valid data after it. "
                        + "Roster will not guess which writes to drop; restore the data directory from a peer or a backup.")
            }
        }
        return RecoveredState(
            snapshot: snapshot, snapshotBytes: snapshotBytes, logEntries: entries, logBytes: logBytes,
            lastSegment: max(segments.last ?? 0, firstNeeded), truncatedTail: truncated)
    }
}
