import Testing
@testable import RosterCore

/// A deterministic little cluster: replicas exchange replication messages through a queue that
/// can drop messages. No sockets, no time; rounds are explicit.
struct ReplicaNetwork {
    var states: [NodeID: RegistryState] = [:]
    var clocks: [NodeID: HybridLogicalClock] = [:]
    var queue: [(from: NodeID, to: NodeID, message: ReplicationMessage)] = []
    var rng: SeededRandom
    var dropRate = 0.0
    var bytesSent = 0
    let nodes: [NodeID]
    var time: Int64 = 1_000

    init(nodes: Int, seed: UInt64) {
        self.nodes = (0..<nodes).map { "n\($0)" }
        rng = SeededRandom(seed: seed)
        for node in self.nodes {
            states[node] = RegistryState()
            clocks[node] = HybridLogicalClock()
        }
    }

    func peers(of node: NodeID) -> [NodeID] { nodes.filter { $0 != node } }

    mutating func write(at node: NodeID, key: String, delete: Bool = false) -> Record {
        time += 1
        let stamp = clocks[node]!.tick(physicalMillis: time)
        var instance = ServiceInstance(serviceName: "web", instanceID: key, host: "10.0.0.1", port: 80,
                                       registeredAt: Timestamp(millisecondsSinceEpoch: time), node: node)
        instance.metadata = ["writer": node, "at": "\(time)"]
        let record = states[node]!.nextRecord(key: key, serviceName: "web", instance: delete ? nil : instance, node: node, stamp: stamp)
        states[node]!.apply(record)
        perform(Replicator(node: node).rumor([record], peers: peers(of: node), using: &rng), at: node)
        return record
    }

    mutating func perform(_ directives: [ReplicationDirective], at node: NodeID) {
        for directive in directives {
            switch directive {
            case .send(let message, let to):
                bytesSent += message.encoded().count
                if Double.random(in: 0..<1, using: &rng) >= dropRate { queue.append((node, to, message)) }
            case .renew:
                break
            case .apply(let records, let from, let hops):
                var changed: [Record] = []
                for record in records {
                    clocks[node]!.observe(record.stamp)
                    if let change = states[node]!.apply(record) { changed.append(change.current) }
                }
                if let hops {
                    perform(Replicator(node: node).forward(changed, hops: hops, except: from, peers: peers(of: node), using: &rng), at: node)
                }
            }
        }
    }

    /// Delivers everything queued, including replies, until the queue is empty.
    mutating func deliverAll() {
        while !queue.isEmpty {
            let (from, to, message) = queue.removeFirst()
            // Round-trip through the codec, as the wire would.
            let decoded = try! ReplicationMessage.decode(message.encoded())
            perform(Replicator(node: to).receive(decoded, from: from, state: states[to]!), at: to)
        }
    }

    mutating func antiEntropyRound() {
        for node in nodes {
            perform(Replicator(node: node).startAntiEntropy(state: states[node]!, lastSync: .zero, peers: peers(of: node), using: &rng), at: node)
        }
        deliverAll()
    }

    var converged: Bool {
        let roots = Set(nodes.map { states[$0]!.digest.root })
        return roots.count == 1
    }
}

@Suite struct ReplicationTests {
    @Test func idleAntiEntropyCostsOnlyTheRootHash() {
        var net = ReplicaNetwork(nodes: 3, seed: 1)
        for i in 0..<100 { _ = net.write(at: "n0", key: "k\(i)") }
        net.deliverAll()
        while !net.converged { net.antiEntropyRound() }
        net.bytesSent = 0
        net.antiEntropyRound()
        #expect(net.bytesSent <= 3 * 16, "three digests of a root hash and a count, nothing more")
    }

    @Test func aRumorReachesEveryNodeWithoutAntiEntropy() {
        var net = ReplicaNetwork(nodes: 5, seed: 7)
        _ = net.write(at: "n2", key: "k")
        net.deliverAll()
        #expect(net.converged)
    }

    @Test func antiEntropyRepairsWhatLostRumorsMissed() {
        var net = ReplicaNetwork(nodes: 4, seed: 3)
        net.dropRate = 1.0  // every rumor lost
        for i in 0..<50 { _ = net.write(at: "n\(i % 4)", key: "k\(i % 20)") }
        net.deliverAll()
        #expect(!net.converged)
        net.dropRate = 0
        var rounds = 0
        while !net.converged && rounds < 50 {
            net.antiEntropyRound()
            rounds += 1
        }
        #expect(net.converged, "converged after \(rounds) rounds")
    }

    @Test func onlyDifferingRecordsAreTransferred() {
        var a = RegistryState()
        var b = RegistryState()
        var clock = HybridLogicalClock()
        for i in 0..<500 {
            let record = a.nextRecord(key: "k\(i)", serviceName: "web",
                                      instance: ServiceInstance(serviceName: "web", instanceID: "k\(i)", host: "h", port: 1, registeredAt: Timestamp(millisecondsSinceEpoch: 0), node: "a"),
                                      node: "a", stamp: clock.tick(physicalMillis: Int64(i)))
            a.apply(record)
            b.apply(record)
        }
        let extra = a.nextRecord(key: "k7", serviceName: "web", instance: nil, node: "a", stamp: clock.tick(physicalMillis: 1_000))
        a.apply(extra)
        let replicator = Replicator(node: "b")
        let reply = replicator.receive(.digest(root: a.digest.root, count: 500, horizon: .zero, lastSync: .zero), from: "a", state: b)
        guard case .send(.bucketDigest(let buckets), _) = reply.first else { Issue.record("expected bucket digest"); return }
        let summaries = Replicator(node: "a").receive(.bucketDigest(buckets), from: "b", state: a)
        #expect(summaries.count == 1, "one bucket differs")
        guard case .send(let summaryMessage, _) = summaries[0] else { return }
        let exchange = replicator.receive(summaryMessage, from: "a", state: b)
        guard case .send(.records(let records, let wanted), _) = exchange.first else { Issue.record("expected records"); return }
        #expect(records.map(\.key) == ["k7"])
        #expect(wanted == ["k7"])
    }

    @Test(arguments: 0..<25)
    func randomWritesWithLossConvergeWithEveryWriteKept(round: Int) {
        let seed = UInt64.random(in: 0...UInt64.max)
        var net = ReplicaNetwork(nodes: Int.random(in: 2...7), seed: seed)
        net.dropRate = 0.3
        var acknowledged: [String: [Record]] = [:]
        var rng = SeededRandom(seed: seed ^ 0xABCD)
        for _ in 0..<200 {
            let node = net.nodes.randomElement(using: &rng)!
            let key = "k\(Int.random(in: 0..<30, using: &rng))"
            let record = net.write(at: node, key: key, delete: Int.random(in: 0..<5, using: &rng) == 0)
            acknowledged[key, default: []].append(record)
            if Bool.random(using: &rng) { net.deliverAll() }
        }
        net.deliverAll()
        net.dropRate = 0
        var rounds = 0
        while !net.converged && rounds < 100 {
            net.antiEntropyRound()
            rounds += 1
        }
        #expect(net.converged, "seed \(seed): not converged after \(rounds) rounds")
        let final = net.states[net.nodes[0]]!
        for (key, writes) in acknowledged {
            let held = final.record(for: key)!
            for write in writes {
                // Nothing acknowledged is lost: the held version is the write or causally after it, or won the tie.
                #expect(Record.merge(held, write) == held, "seed \(seed): \(key) lost a write")
            }
        }
    }

    @Test func messagesRoundTripAndGarbageNeverTraps() throws {
        let record = Record(key: "k", serviceName: "web", instance: nil, clock: VectorClock(["a": 2]), stamp: .zero, origin: "a")
        let messages: [ReplicationMessage] = [
            .rumor(records: [record], hops: 3), .digest(root: 42, count: 7, horizon: HLCTimestamp(physicalMillis: 5, logical: 2), lastSync: HLCTimestamp(physicalMillis: 9, logical: 0)), .bucketDigest([1, 2, 3]),
            .bucketSummaries([BucketSummary(bucket: 5, entries: [KeyHash(key: "k", hash: 9)])]),
            .records([record], wanted: ["x", "y"]),
            .renewals([LeaseRenewal(instanceID: "i", checkIDs: ["service:i"], wallMillis: -3), LeaseRenewal(instanceID: "j", checkIDs: [], wallMillis: 99)]),
        ]
        for message in messages { #expect(try ReplicationMessage.decode(message.encoded()) == message) }
        var rng = SeededRandom(seed: 99)
        for _ in 0..<3000 {
            var bytes = messages.randomElement(using: &rng)!.encoded()
            bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            _ = try? ReplicationMessage.decode(Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng))))
        }
    }

    @Test func rumorHopsGrowWithTheLogOfTheClusterSize() {
        let settings = ReplicationSettings()
        #expect(settings.rumorHops(clusterSize: 1) == 0)
        #expect(settings.rumorHops(clusterSize: 3) == 2)
        #expect(settings.rumorHops(clusterSize: 1000) == 8)
    }
}
