import Foundation
import Metrics
import RosterCore

#if canImport(Glibc)
import Glibc
#endif

/// An append-only log with group commit.
///
/// Appends are cheap and ordered: the caller (the registry actor) hands over encoded bytes and
/// gets a sequence number back without waiting. A dedicated flusher thread writes everything
/// pending in one `write`, calls `fdatasync` once for the whole batch, and only then releases the
/// callers waiting on those sequence numbers. So many writes share one fsync, and nobody is
/// acknowledged before theirs. The flusher is a thread, not a task, because fsync blocks and
/// must not stall the cooperative pool.
public final class WriteAheadLog: @unchecked Sendable {
    /// Raised to every waiter once a write or fsync has failed: durability can no longer be
    /// promised, so the node refuses writes instead of acknowledging what may be lost.
    public struct Failure: Error, CustomStringConvertible {
        public var underlying: FileError
        public var description: String { "the write-ahead log failed: \(underlying)" }
    }

    private enum Pending {
        case entry([UInt8])
        case rotate(segment: UInt64)
    }

    public let directory: String
    private let condition = NSCondition()
    // Everything below is guarded by `condition`.
    private var pending: [Pending] = []
    private var pendingCount: UInt64 = 0
    private var appendedSeq: UInt64 = 0
    private var durableSeq: UInt64 = 0
    private var waiters: [(seq: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var failure: Failure?
    private var stopping = false
    private var stopped = false
    private var currentSegment: UInt64
    private var bytesInSegments: Int = 0
    private var batches = 0

    private var fd: Int32
    private var path: String
    private let fsyncTimer = Timer(label: "roster_wal_fsync_seconds")
    private let batchRecorder = Recorder(label: "roster_wal_batch_entries")

    /// Opens a new segment after `lastSegment` in `directory`; older segments are left for
    /// the caller to replay and later remove. `carriedBytes` is the size of those older
    /// segments that no snapshot covers yet: they count toward the next snapshot, or a node
    /// restarted more often than it fills a threshold would never snapshot at all.
    public init(directory: String, lastSegment: UInt64, carriedBytes: Int = 0) throws(FileError) {
        self.directory = directory
        bytesInSegments = carriedBytes
        try FileIO.makeDirectory(directory)
        currentSegment = lastSegment + 1
        path = WriteAheadLog.segmentPath(directory, currentSegment)
        fd = try FileIO.open(path, flags: O_WRONLY | O_CREAT | O_APPEND)
        try FileIO.syncDirectory(directory)
        Thread.detachNewThread { [self] in self.flushLoop() }
    }

    static func segmentPath(_ directory: String, _ segment: UInt64) -> String {
        let digits = String(segment)
        return "\(directory)/\(String(repeating: "0", count: max(0, 12 - digits.count)))\(digits).log"
    }

    /// Segment numbers present in `directory`, ascending.
    static func segments(in directory: String) throws(FileError) -> [UInt64] {
        guard FileIO.exists(directory) else { return [] }
        return try FileIO.listDirectory(directory).compactMap { name in
            name.hasSuffix(".log") ? UInt64(name.dropLast(4)) : nil
        }.sorted()
    }

    // MARK: - Appending

    /// Queues an entry; returns its sequence number. Never blocks on I/O.
    public func append(_ entry: LogEntry) -> UInt64 {
        let bytes = entry.encoded()
        condition.lock()
        defer { condition.unlock() }
        appendedSeq += 1
        bytesInSegments += bytes.count
        pending.append(.entry(bytes))
        condition.signal()
        return appendedSeq
    }

    /// Starts a new segment after everything appended so far. Returns the new segment's number:
    /// every earlier segment holds only entries appended before this call.
    public func rotate() -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        let next = currentSegment + UInt64(pending.filter { if case .rotate = $0 { true } else { false } }.count) + 1
        pending.append(.rotate(segment: next))
        bytesInSegments = 0
        condition.signal()
        return next
    }

    /// How many batches the flusher has written: fewer than the appends when commits group.
    public var batchesWritten: Int {
        condition.lock()
        defer { condition.unlock() }
        return batches
    }

    /// Bytes of log since the last rotation (which a snapshot makes), counting the segments
    /// carried over from before this start: the snapshot trigger.
    public var bytesSinceRotation: Int {
        condition.lock()
        defer { condition.unlock() }
        return bytesInSegments
    }

    /// Returns once entry `seq` is on disk, or throws if the log has failed.
    public func waitUntilDurable(_ seq: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            condition.lock()
            defer { condition.unlock() }
            if let failure {
                continuation.resume(throwing: failure)
            } else if seq <= durableSeq {
                continuation.resume()
            } else {
                waiters.append((seq, continuation))
            }
        }
    }

    /// Deletes segments older than `segment`, once a snapshot covers them.
    public func removeSegments(before segment: UInt64) throws(FileError) {
        for s in try WriteAheadLog.segments(in: directory) where s < segment {
            try FileIO.remove(WriteAheadLog.segmentPath(directory, s))
        }
    }

    /// Flushes what is pending, then stops the flusher and closes the file.
    public func close() {
        condition.lock()
        stopping = true
        condition.signal()
        while !stopped { condition.wait() }
        condition.unlock()
    }

    // MARK: - Flusher thread

    private func flushLoop() {
        while true {
            condition.lock()
            while pending.isEmpty && !stopping { condition.wait() }
            if pending.isEmpty && stopping {
                Glibc.close(fd)
                stopped = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            let batchEnd = appendedSeq
            condition.unlock()

            let result = write(batch)

            condition.lock()
            var ready: [CheckedContinuation<Void, any Error>] = []
            var failed: [CheckedContinuation<Void, any Error>] = []
            switch result {
            case .success:
                durableSeq = batchEnd
                batches += 1
                waiters.removeAll { waiter in
                    guard waiter.seq <= batchEnd else { return false }
                    ready.append(waiter.continuation)
                    return true
                }
            case .failure(let error):
                failure = Failure(underlying: error)
                failed = waiters.map(\.continuation)
                waiters.removeAll()
            }
            let failure = self.failure
            condition.unlock()
            for c in ready { c.resume() }
            for c in failed { c.resume(throwing: failure!) }
        }
    }

    /// Writes a batch: entries go out in one `write` per segment, each segment synced once.
    private func write(_ batch: [Pending]) -> Result<Void, FileError> {
        do throws(FileError) {
            if failure != nil { return .failure(failure!.underlying) }
            var buffer: [UInt8] = []
            var entries = 0
            for item in batch {
                switch item {
                case .entry(let bytes):
                    buffer.append(contentsOf: bytes)
                    entries += 1
                case .rotate(let segment):
                    try flush(&buffer)
                    Glibc.close(fd)
                    currentSegment = segment
                    path = WriteAheadLog.segmentPath(directory, segment)
                    fd = try FileIO.open(path, flags: O_WRONLY | O_CREAT | O_APPEND)
                    try FileIO.syncDirectory(directory)
                }
            }
            try flush(&buffer)
            batchRecorder.record(entries)
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    private func flush(_ buffer: inout [UInt8]) throws(FileError) {
        guard !buffer.isEmpty else { return }
        try FileIO.writeAll(fd, buffer, path: path)
        let start = DispatchTime.now().uptimeNanoseconds
        try FileIO.sync(fd, path: path)
        fsyncTimer.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
        buffer.removeAll(keepingCapacity: true)
    }
}
