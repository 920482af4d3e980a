@testable import RosterCore

/// The core's deterministic RNG, so property tests print a seed and can be replayed.
typealias SeededRandom = SplitMix64

func makeInstance(
    _ id: String, service: String = "web", port: Int = 8080, tags: [String] = [], node: String = "n1",
    status: ServiceStatus = .running
) -> ServiceInstance {
    ServiceInstance(
        serviceName: service, instanceID: id, host: "10.0.0.1", port: port, tags: tags, status: status,
        registeredAt: Timestamp(millisecondsSinceEpoch: 1_700_000_000_000), node: node)
}

/// Simulated writers for property tests: each node has its own state and HLC, writes keys, and
/// exchanges records with others in random order. Every record ever made is collected.
struct History {
    var states: [String: RegistryState] = [:]
    var clocks: [String: HybridLogicalClock] = [:]
    var records: [Record] = []
    var time: Int64 = 1_000

    static func random(seed: UInt64, nodes: [String] = ["a", "b", "c"], keys: [String] = ["k1", "k2"], steps: Int = 60) -> History {
        var rng = SeededRandom(seed: seed)
        var history = History()
        for node in nodes {
            history.states[node] = RegistryState()
            history.clocks[node] = HybridLogicalClock()
        }
        for _ in 0..<steps {
            // Clocks may stand still or jump, to exercise HLC logical counters and ties.
            history.time += Int64.random(in: 0...2, using: &rng)
            let node = nodes.randomElement(using: &rng)!
            if Bool.random(using: &rng), !history.records.isEmpty {
                // Deliver some earlier record to this node.
                let record = history.records.randomElement(using: &rng)!
                history.clocks[node]!.observe(record.stamp)
                history.states[node]!.apply(record)
            } else {
                let key = keys.randomElement(using: &rng)!
                let delete = Int.random(in: 0..<4, using: &rng) == 0
                let stamp = history.clocks[node]!.tick(physicalMillis: history.time)
                let instance = delete ? nil : makeInstance(key, port: Int.random(in: 1...9, using: &rng), node: node)
                let record = history.states[node]!.nextRecord(key: key, serviceName: "web", instance: instance, node: node, stamp: stamp)
                history.states[node]!.apply(record)
                history.records.append(record)
            }
        }
        return history
    }
}
