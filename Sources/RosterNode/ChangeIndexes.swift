import Foundation

/// The registry's change indexes: a global modify index and, per service, the index of its
/// last change (Consul's `X-Consul-Index`).
///
/// Written only by the registry actor, but readable from any thread without an actor hop, so
/// that the hot read path can check whether a cached answer is still current for the price of a
/// lock. An empty registry is at 1 (clients treat 0 specially); the first change is 2.
public final class ChangeIndexes: @unchecked Sendable {
    private let lock = NSLock()
    private var global: UInt64 = 1
    private var services: [String: UInt64] = [:]

    /// The global modify index.
    public var current: UInt64 { lock.withLock { global } }

    /// The index of a scope. A service never seen reports the global index, so a blocking query
    /// on it wakes when it first appears (its first change gets a larger index).
    public func index(for scope: WatchScope) -> UInt64 {
        lock.withLock {
            switch scope {
            case .all: global
            case .service(let name): services[name] ?? global
            }
        }
    }

    /// Raises the global index by one and marks `changed` services as changed at it.
    func bump(_ changed: [String]) -> UInt64 {
        lock.withLock {
            global += 1
            for service in changed { services[service] = global }
            return global
        }
    }

    /// Takes in indexes found on disk; never lowers anything, so indexes never go backwards.
    func restore(global restored: UInt64, services restoredServices: [String: UInt64]) {
        lock.withLock {
            global = max(global, restored)
            services.merge(restoredServices, uniquingKeysWith: max)
        }
    }

    /// A copy for a snapshot.
    var snapshot: (global: UInt64, services: [String: UInt64]) {
        lock.withLock { (global, services) }
    }
}
