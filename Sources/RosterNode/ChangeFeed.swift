import Foundation
import RosterCore

/// One change to the registry, as subscribers see it.
public struct ChangeEvent: Sendable, Equatable {
    public enum Kind: String, Sendable { case registered, updated, deregistered }
    /// The local modify index at which the change applied: increasing, so usable as an event id.
    public var index: UInt64
    public var kind: Kind
    public var serviceName: String
    public var instanceID: String
    public var instance: ServiceInstance?
}

/// Fans changes out to subscribers without letting any of them slow the writers or each other.
///
/// Each subscriber has its own bounded buffer keyed by instance id: a later change to the same
/// instance replaces the earlier one still waiting (coalescing), so a slow reader sees the latest
/// state rather than every step. If a reader falls so far behind that its buffer holds
/// `capacity` distinct instances, it gets a single `overflowed` marker and should re-read the
/// full state. Publishing is O(subscribers) under a short lock and never waits.
public final class ChangeFeed: @unchecked Sendable {
    public enum Item: Sendable, Equatable {
        case change(ChangeEvent)
        /// Events were dropped: the subscriber must resynchronise from a full read.
        case overflowed
        /// Nothing happened; the subscriber was nudged awake (for keep-alives).
        case idle
    }

    fileprivate final class Subscriber: @unchecked Sendable {
        let service: String?
        var order: [String] = []
        var latest: [String: ChangeEvent] = [:]
        var overflowed = false
        var cancelled = false
        var nudged = false
        var waiting: CheckedContinuation<Item?, Never>?
        init(service: String?) { self.service = service }
    }

    private let lock = NSLock()
    private var subscribers: [UUID: Subscriber] = [:]
    public let capacity: Int

    public init(capacity: Int = 4096) { self.capacity = capacity }

    public var subscriberCount: Int { lock.withLock { subscribers.count } }

    /// Subscribes to changes, for every service or for one. Dropping the subscription, or
    /// cancelling the task waiting on it, unsubscribes.
    public func subscribe(service: String? = nil) -> Subscription {
        let subscriber = Subscriber(service: service)
        let id = UUID()
        lock.withLock { subscribers[id] = subscriber }
        return Subscription(feed: self, id: id, subscriber: subscriber)
    }

    /// A live subscription: an async sequence of changes.
    public final class Subscription: AsyncSequence, @unchecked Sendable {
        fileprivate let feed: ChangeFeed
        fileprivate let id: UUID
        fileprivate let subscriber: Subscriber

        fileprivate init(feed: ChangeFeed, id: UUID, subscriber: Subscriber) {
            self.feed = feed
            self.id = id
            self.subscriber = subscriber
        }

        deinit { feed.unsubscribe(id) }

        /// Wakes a waiting `next()` with `.idle`, so a consumer can do periodic work (such as
        /// keep-alives) without racing a timer against `next()`, which could lose an event.
        public func nudge() {
            feed.nudge(subscriber)
        }

        /// The next change; nil once cancelled.
        public func next() async -> Item? {
            await withTaskCancellationHandler {
                await feed.next(for: subscriber)
            } onCancel: {
                feed.wakeWithNil(subscriber)
            }
        }

        public struct AsyncIterator: AsyncIteratorProtocol {
            let subscription: Subscription
            public mutating func next() async -> Item? { await subscription.next() }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self) }
    }

    /// Wakes a waiting subscriber with `.idle`; one that is busy gets `.idle` from its next
    /// call instead (after any pending change), so a nudge is never lost.
    fileprivate func nudge(_ subscriber: Subscriber) {
        let waiting: CheckedContinuation<Item?, Never>? = lock.withLock {
            guard let waiting = subscriber.waiting else {
                subscriber.nudged = true
                return nil
            }
            subscriber.waiting = nil
            return waiting
        }
        waiting?.resume(returning: .idle)
    }

    /// Ends every subscription: used at shutdown so that long-lived streams let the server stop.
    public func closeAll() {
        let all = lock.withLock { () -> [Subscriber] in
            defer { subscribers.removeAll() }
            return Array(subscribers.values)
        }
        for subscriber in all { wakeWithNil(subscriber) }
    }

    fileprivate func unsubscribe(_ id: UUID) {
        guard let subscriber = lock.withLock({ subscribers.removeValue(forKey: id) }) else { return }
        wakeWithNil(subscriber)
    }

    fileprivate func wakeWithNil(_ subscriber: Subscriber) {
        let waiting: CheckedContinuation<Item?, Never>? = lock.withLock {
            subscriber.cancelled = true
            defer { subscriber.waiting = nil }
            return subscriber.waiting
        }
        waiting?.resume(returning: nil)
    }

    public func publish(_ event: ChangeEvent) {
        var wake: [(CheckedContinuation<Item?, Never>, Item)] = []
        lock.withLock {
            for subscriber in subscribers.values where subscriber.service == nil || subscriber.service == event.serviceName {
                if let waiting = subscriber.waiting {
                    subscriber.waiting = nil
                    wake.append((waiting, .change(event)))
                    continue
                }
                if subscriber.latest[event.instanceID] == nil {
                    if subscriber.order.count >= capacity {
                        subscriber.overflowed = true
                        subscriber.order.removeAll()
                        subscriber.latest.removeAll()
                        continue
                    }
                    subscriber.order.append(event.instanceID)
                }
                subscriber.latest[event.instanceID] = event
            }
        }
        for (continuation, item) in wake { continuation.resume(returning: item) }
    }

    fileprivate func next(for subscriber: Subscriber) async -> Item? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Item?, Never>) in
            lock.lock()
            if subscriber.cancelled {
                lock.unlock()
                continuation.resume(returning: nil)
            } else if subscriber.overflowed {
                subscriber.overflowed = false
                lock.unlock()
                continuation.resume(returning: .overflowed)
            } else if !subscriber.order.isEmpty {
                let key = subscriber.order.removeFirst()
                let event = subscriber.latest.removeValue(forKey: key)!
                lock.unlock()
                continuation.resume(returning: .change(event))
            } else if subscriber.nudged {
                subscriber.nudged = false
                lock.unlock()
                continuation.resume(returning: .idle)
            } else {
                subscriber.waiting = continuation
                lock.unlock()
            }
        }
    }
}
