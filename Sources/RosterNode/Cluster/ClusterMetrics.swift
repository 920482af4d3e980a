import Foundation
import Metrics
import RosterCore

/// Cluster metrics: members by state, gossip bytes before and after compression, rounds.
final class ClusterMetrics: @unchecked Sendable {
    let antiEntropyRounds = Counter(label: "roster_anti_entropy_rounds_total")
    let refusedPeers = Counter(label: "roster_peers_refused_total")
    private let rumorsReceived = Counter(label: "roster_replication_messages_total", dimensions: [("kind", "rumor")])
    private let digestsReceived = Counter(label: "roster_replication_messages_total", dimensions: [("kind", "digest")])
    private let repairsReceived = Counter(label: "roster_replication_messages_total", dimensions: [("kind", "repair")])
    private let renewalsReceived = Counter(label: "roster_replication_messages_total", dimensions: [("kind", "renewals")])
    private let payloadBytesSent = Gauge(label: "roster_gossip_bytes_sent", dimensions: [("stage", "payload")])
    private let wireBytesSent = Gauge(label: "roster_gossip_bytes_sent", dimensions: [("stage", "wire")])
    private let payloadBytesReceived = Gauge(label: "roster_gossip_bytes_received", dimensions: [("stage", "payload")])
    private let wireBytesReceived = Gauge(label: "roster_gossip_bytes_received", dimensions: [("stage", "wire")])
    private let membersByState: [MemberState: Gauge] = Dictionary(
        uniqueKeysWithValues: MemberState.allCases.map { ($0, Gauge(label: "roster_members", dimensions: [("state", $0.rawValue)])) })

    func count(_ message: ReplicationMessage) {
        switch message {
        case .rumor: rumorsReceived.increment()
        case .digest: digestsReceived.increment()
        case .bucketDigest, .bucketSummaries, .records: repairsReceived.increment()
        case .renewals: renewalsReceived.increment()
        }
    }

    func record(members: [Member], transport: PeerTransportStatistics) {
        var counts: [MemberState: Int] = [:]
        for member in members { counts[member.state, default: 0] += 1 }
        for state in MemberState.allCases { membersByState[state]?.record(counts[state] ?? 0) }
        payloadBytesSent.record(transport.payloadBytesSent)
        wireBytesSent.record(transport.wireBytesSent)
        payloadBytesReceived.record(transport.payloadBytesReceived)
        wireBytesReceived.record(transport.wireBytesReceived)
    }
}

/// Lease renewals heard at this node, waiting for the next batch. A renewal of the same
/// instance and checks replaces the earlier one, so a batch is at most one entry per lease.
final class RenewalOutbox: @unchecked Sendable {
    private struct Key: Hashable {
        var instanceID: String
        var checkIDs: [String]
    }

    private let lock = NSLock()
    private var pending: [Key: Int64] = [:]

    func add(_ renewal: LeaseRenewal) {
        lock.withLock { pending[Key(instanceID: renewal.instanceID, checkIDs: renewal.checkIDs)] = renewal.wallMillis }
    }

    func drain() -> [LeaseRenewal] {
        lock.withLock {
            defer { pending.removeAll(keepingCapacity: true) }
            return pending.map { LeaseRenewal(instanceID: $0.key.instanceID, checkIDs: $0.key.checkIDs, wallMillis: $0.value) }
        }
    }
}

/// Records written at this node, waiting for the next rumor batch. Filled from the registry
/// actor, drained by the cluster actor; a lock keeps the hand-off free of actor hops.
final class RumorOutbox: @unchecked Sendable {
    private let lock = NSLock()
    private var records: [Record] = []
    private let readyContinuation: AsyncStream<Void>.Continuation
    /// Yields when records arrive in an empty outbox. Signals coalesce: records added while a
    /// flush is under way ride in the next one, so batches form only while sending is busy.
    let ready: AsyncStream<Void>

    init() {
        (ready, readyContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func add(_ new: [Record]) {
        let wasEmpty = lock.withLock {
            defer { records.append(contentsOf: new) }
            return records.isEmpty
        }
        if wasEmpty && !new.isEmpty { readyContinuation.yield() }
    }

    func drain() -> [Record] {
        lock.withLock {
            defer { records.removeAll(keepingCapacity: true) }
            return records
        }
    }
}

/// A counter that can be read from any thread without an actor hop.
public final class VersionCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var current: UInt64 = 0

    public init() {}

    public var value: UInt64 { lock.withLock { current } }

    func increment() { lock.withLock { current &+= 1 } }
}
