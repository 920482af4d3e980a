import Foundation
import Logging
import RosterCore
@testable import RosterNode
import Synchronization

/// A fresh data directory, removed when the test is done with it.
final class TemporaryDirectory: Sendable {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("roster-test-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let wall = Atomic<Int64>(1_700_000_000_000)
    private let monotonic = Atomic<Int64>(1_000)

    func advance(milliseconds: Int64) {
        wall.add(milliseconds, ordering: .relaxed)
        monotonic.add(milliseconds, ordering: .relaxed)
    }

    var nodeClock: NodeClock {
        NodeClock(wallMillis: { self.wall.load(ordering: .relaxed) }, monotonicMillis: { self.monotonic.load(ordering: .relaxed) })
    }
}

let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}()

func makeInstance(_ id: String, service: String = "web", node: String = "n1", checks: [HealthCheck] = []) -> ServiceInstance {
    ServiceInstance(
        serviceName: service, instanceID: id, host: "10.0.0.1", port: 8080,
        registeredAt: Timestamp(millisecondsSinceEpoch: 0), node: node, checks: checks)
}

func openRegistry(
    _ dir: TemporaryDirectory, clock: NodeClock = .system, snapshotPolicy: SnapshotPolicy = SnapshotPolicy()
) async throws -> Registry {
    let registry = try await Registry.open(
        nodeID: "n1", dataDir: dir.path, clock: clock, logger: quietLogger, snapshotPolicy: snapshotPolicy)
    await registry.updateView(.solo("n1"))
    return registry
}

/// A value shared with `@Sendable` callbacks in tests.
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func mutate(_ change: (inout Value) -> Void) { lock.withLock { change(&stored) } }
}
