import Foundation
import RosterCore
import Testing
@testable import RosterNode

@Suite struct PersistenceTests {
    @Test func acknowledgedWritesSurviveAReopen() async throws {
        let dir = TemporaryDirectory()
        do {
            let registry = try await openRegistry(dir)
            for i in 0..<50 { _ = try await registry.register(makeInstance("web-\(i)"), status: nil) }
            _ = try await registry.deregister("web-7")
            // No close(): the process "dies" here; only what the log holds counts.
        }
        let reopened = try await openRegistry(dir)
        #expect(await reopened.instanceCount == 49)
        #expect(await reopened.instance("web-7") == nil)
        #expect(await reopened.instance("web-49") != nil)
        #expect(await reopened.modifyIndex == 52, "the modify index is restored, so blocking indexes never go backwards")
    }

    @Test func concurrentWritesShareFsyncs() async throws {
        let dir = TemporaryDirectory()
        let registry = try await openRegistry(dir)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<400 {
                group.addTask { _ = try await registry.register(makeInstance("web-\(i)"), status: nil) }
            }
            try await group.waitForAll()
        }
        #expect(await registry.instanceCount == 400)
        // Group commit: the log was written in fewer batches than there were writes.
        #expect(registry.wal.batchesWritten < 400)
        #expect(registry.wal.batchesWritten >= 1)
    }

    @Test func aTornTailIsCutOffAndEverythingBeforeItKept() async throws {
        let dir = TemporaryDirectory()
        do {
            let registry = try await openRegistry(dir)
            for i in 0..<10 { _ = try await registry.register(makeInstance("web-\(i)"), status: nil) }
        }
        let segment = try #require(try WriteAheadLog.segments(in: "\(dir.path)/wal").last)
        let path = WriteAheadLog.segmentPath("\(dir.path)/wal", segment)
        // A crash mid-write: the start of an entry whose body never made it.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data([0, 0, 1, 0, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3]))
        try handle.close()

        let reopened = try await openRegistry(dir)
        #expect(await reopened.instanceCount == 10)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(size % 1 == 0)
        #expect(try FileIO.readAll(path).suffix(3) != [1, 2, 3], "the torn bytes were truncated away")
    }

    @Test func corruptionInTheMiddleStopsTheStartWithAClearMessage() async throws {
        let dir = TemporaryDirectory()
        do {
            let registry = try await openRegistry(dir)
            for i in 0..<10 { _ = try await registry.register(makeInstance("web-\(i)"), status: nil) }
        }
        let segment = try #require(try WriteAheadLog.segments(in: "\(dir.path)/wal").last)
        let path = WriteAheadLog.segmentPath("\(dir.path)/wal", segment)
        var bytes = try FileIO.readAll(path)
        bytes[20] ^= 0xFF  // inside the first entry's payload
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        await #expect {
            _ = try await openRegistry(dir)
        } throws: { error in
            "\(error)".contains("corrupt") && "\(error)".contains(path)
        }
    }

    @Test func aSnapshotReplacesOldSegmentsAndRestoresTheSameState() async throws {
        let dir = TemporaryDirectory()
        do {
            let registry = try await openRegistry(dir, snapshotPolicy: SnapshotPolicy(maximumLogBytes: 1))
            for i in 0..<30 { _ = try await registry.register(makeInstance("web-\(i)", service: i % 2 == 0 ? "web" : "api"), status: nil) }
            await registry.snapshotIfNeeded()
            for i in 30..<35 { _ = try await registry.register(makeInstance("web-\(i)"), status: nil) }
            _ = try await registry.deregister("web-3")
            #expect(try WriteAheadLog.segments(in: "\(dir.path)/wal").count == 1, "covered segments are removed")
        }
        let reopened = try await openRegistry(dir)
        #expect(await reopened.instanceCount == 34)
        #expect(await reopened.instance("web-3") == nil)
        #expect(reopened.index(for: .service("api")) > 1)
        #expect(await reopened.modifyIndex == 37)
    }

    @Test func snapshotsComeWhenTheLogIsFourTimesTheLastSnapshotWithinTheBounds() {
        let policy = SnapshotPolicy(maximumLogBytes: 64 << 20, minimumLogBytes: 4 << 20)
        // No snapshot yet, or a small one: the minimum decides.
        #expect(!policy.isDue(logBytes: (4 << 20) - 1, lastSnapshotBytes: 0))
        #expect(policy.isDue(logBytes: 4 << 20, lastSnapshotBytes: 0))
        #expect(policy.isDue(logBytes: 4 << 20, lastSnapshotBytes: 200_000))
        // A large registry keeps four times its snapshot in log, up to the maximum.
        #expect(!policy.isDue(logBytes: 20 << 20, lastSnapshotBytes: 8 << 20))
        #expect(policy.isDue(logBytes: 32 << 20, lastSnapshotBytes: 8 << 20))
        #expect(!policy.isDue(logBytes: (64 << 20) - 1, lastSnapshotBytes: 100 << 20))
        #expect(policy.isDue(logBytes: 64 << 20, lastSnapshotBytes: 100 << 20))
        // A maximum below the minimum wins.
        #expect(SnapshotPolicy(maximumLogBytes: 1).isDue(logBytes: 1, lastSnapshotBytes: 0))
    }

    @Test func aSmallRegistryUnderChurnSnapshotsLongBeforeTheMaximum() async throws {
        let dir = TemporaryDirectory()
        let policy = SnapshotPolicy(maximumLogBytes: 64 << 20, minimumLogBytes: 2_000)
        func snapshotSegment() throws -> UInt64? {
            guard FileIO.exists(Snapshot.path(in: dir.path)) else { return nil }
            return try Snapshot.decode(try FileIO.readAll(Snapshot.path(in: dir.path))).nextSegment
        }
        do {
            let registry = try await openRegistry(dir, snapshotPolicy: policy)
            for i in 0..<40 { _ = try await registry.register(makeInstance("web-\(i)"), status: nil) }
            await registry.snapshotIfNeeded()
            let first = try #require(try snapshotSegment(), "past the minimum: a snapshot")
            let size = await registry.lastSnapshotBytes
            #expect(size > 500)
            // Churn on the same instances: no new snapshot until the log is four times the last one.
            var round = 0
            while registry.wal.bytesSinceRotation < 4 * size {
                round += 1
                for i in 0..<10 { _ = try await registry.register(makeInstance("web-\(i)", node: "n\(round)"), status: nil) }
                if registry.wal.bytesSinceRotation < 4 * size {
                    await registry.snapshotIfNeeded()
                    #expect(try snapshotSegment() == first)
                }
            }
            await registry.snapshotIfNeeded()
            #expect(try snapshotSegment() ?? 0 > first)
            #expect(try WriteAheadLog.segments(in: "\(dir.path)/wal").count == 1, "covered segments are removed")
        }
        let reopened = try await openRegistry(dir, snapshotPolicy: policy)
        #expect(await reopened.instanceCount == 40)
        #expect(await reopened.lastSnapshotBytes > 500, "a reopened registry knows its snapshot's size")
    }

    @Test func logFromEarlierLivesCountsTowardTheNextSnapshot() async throws {
        // Found by the 600 s chaos run: each start began counting from zero, so a node killed
        // more often than it wrote a threshold's worth never snapshotted, and its restarts
        // replayed an ever longer log.
        let dir = TemporaryDirectory()
        let policy = SnapshotPolicy(maximumLogBytes: 64 << 20, minimumLogBytes: 2_000)
        var perLife = 0
        do {
            let registry = try await openRegistry(dir, snapshotPolicy: policy)
            for i in 0..<12 { _ = try await registry.register(makeInstance("web-\(i)"), status: nil) }
            perLife = registry.wal.bytesSinceRotation
            #expect(perLife < 2_000 && 2 * perLife >= 2_000, "the test needs two lives to pass the minimum")
            await registry.snapshotIfNeeded()
            #expect(!FileIO.exists(Snapshot.path(in: dir.path)))
        }
        let second = try await openRegistry(dir, snapshotPolicy: policy)
        #expect(second.wal.bytesSinceRotation == perLife, "the first life's log is carried over")
        for i in 12..<24 { _ = try await second.register(makeInstance("web-\(i)"), status: nil) }
        await second.snapshotIfNeeded()
        #expect(FileIO.exists(Snapshot.path(in: dir.path)))
        #expect(try WriteAheadLog.segments(in: "\(dir.path)/wal").count == 1, "covered segments are removed")
        let third = try await openRegistry(dir, snapshotPolicy: policy)
        #expect(await third.instanceCount == 24)
        #expect(third.wal.bytesSinceRotation == 0, "nothing after the snapshot yet")
    }

    @Test func aCorruptSnapshotIsRefusedByName() async throws {
        let dir = TemporaryDirectory()
        do {
            let registry = try await openRegistry(dir)
            _ = try await registry.register(makeInstance("web-1"), status: nil)
            await registry.close()
        }
        let path = Snapshot.path(in: dir.path)
        var bytes = try FileIO.readAll(path)
        bytes[bytes.count / 2] ^= 0x55
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        await #expect {
            _ = try await openRegistry(dir)
        } throws: { error in
            "\(error)".contains("snapshot")
        }
    }

    @Test func logScanTellsTornTailsFromCorruption() {
        let record = Record(key: "k", serviceName: "web", instance: makeInstance("k"), clock: VectorClock(["n1": 1]), stamp: .zero, origin: "n1")
        let entry = LogEntry(index: 1, record: record).encoded()
        let two = entry + entry
        guard case .clean(let entries) = LogEntry.scan(two) else { Issue.record("expected clean"); return }
        #expect(entries.count == 2)
        guard case .tornTail(let kept, let length) = LogEntry.scan(two + entry.prefix(5)) else { Issue.record("expected torn"); return }
        #expect(kept.count == 2 && length == two.count)
        var flipped = two
        flipped[12] ^= 1
        guard case .corrupt = LogEntry.scan(flipped) else { Issue.record("expected corrupt"); return }
        var lastFlipped = two
        lastFlipped[entry.count + 12] ^= 1
        guard case .tornTail(let keptBefore, _) = LogEntry.scan(lastFlipped) else { Issue.record("a bad final entry is a torn write"); return }
        #expect(keptBefore.count == 1)
    }
}
