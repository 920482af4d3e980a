import Foundation
import RosterCore

/// Reads and blocking queries.
extension Registry {
    public func instance(_ id: String) -> ServiceInstance? {
        state.instance(id).map(present)
    }

    public func query(_ filter: InstanceFilter) -> [ServiceInstance] {
        state.query(filter).map(present)
    }

    /// The instances of one service and that service's change index, read atomically.
    public func service(_ name: String, filter: InstanceFilter = InstanceFilter()) -> (instances: [ServiceInstance], index: UInt64) {
        var scoped = filter
        scoped.equals.insert((.service, name), at: 0)
        return (query(scoped), index(for: .service(name)))
    }

    public func serviceCounts() -> [String: Int] { state.serviceCounts }

    public func serviceTags() -> [String: [String]] { state.serviceTags() }

    public var instanceCount: Int { state.liveCount }

    /// The change index of a scope (see `ChangeIndexes.index(for:)`).
    public nonisolated func index(for scope: WatchScope) -> UInt64 {
        indexes.index(for: scope)
    }

    // MARK: - Blocking

    /// Waits until the scope's index exceeds `index`, or `timeout` passes. Returns the index.
    public nonisolated func waitForChange(_ scope: WatchScope, after index: UInt64, timeout: Duration) async -> UInt64 {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitIndex(scope, after: index) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        return self.index(for: scope)
    }

    private func waitIndex(_ scope: WatchScope, after index: UInt64) async {
        guard self.index(for: scope) <= index, !shuttingDown else { return }
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                if Task.isCancelled {
                    continuation.resume()
                } else {
                    waiters[scope, default: [:]][id] = continuation
                }
            }
        } onCancel: {
            Task { await self.cancelWaiter(scope, id) }
        }
    }

    private func cancelWaiter(_ scope: WatchScope, _ id: UUID) {
        waiters[scope]?.removeValue(forKey: id)?.resume()
    }

    func wake(_ scope: WatchScope) {
        guard let woken = waiters.removeValue(forKey: scope) else { return }
        for continuation in woken.values { continuation.resume() }
    }
}

extension Registry {
    /// Answers every blocking query now, ends every watch stream, and lets later ones return at
    /// once: used at shutdown, so long-lived requests don't hold the server open.
    public func releaseWaiters() {
        shuttingDown = true
        for scope in Array(waiters.keys) { wake(scope) }
        feed.closeAll()
    }

    /// The latest state of every key changed after `index`, in index order, for a watcher that
    /// reconnects with `Last-Event-ID`. `complete` is false when a change it missed can no longer
    /// be reconstructed (its tombstone was collected): it must then re-read everything.
    public func changes(since index: UInt64, service: String?) -> (events: [ChangeEvent], complete: Bool) {
        let events = keyIndexes.filter { $0.value > index }.compactMap { key, keyIndex -> ChangeEvent? in
            guard let record = state.record(for: key), service == nil || record.serviceName == service else { return nil }
            let kind: ChangeEvent.Kind = record.isTombstone ? .deregistered : .updated
            return ChangeEvent(
                index: keyIndex, kind: kind, serviceName: record.serviceName, instanceID: key,
                instance: record.instance.map(present))
        }.sorted { $0.index < $1.index }
        return (events, index >= collectedThroughIndex)
    }
}
