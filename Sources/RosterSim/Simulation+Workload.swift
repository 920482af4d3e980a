import RosterCore

/// A client write the cluster acknowledged: the record its node committed, after its fsync.
struct AckedWrite {
    var record: Record
    var node: Int
    var at: Int64
}

/// Everything the clients were told, and every deletion anyone made, for the invariants.
struct History {
    var acked: [AckedWrite] = []
    /// Every tombstone any node committed, acknowledged or not: a key that is gone at the end
    /// is fine only if some deletion causally followed each acknowledged write of it.
    var tombstones: [String: [VectorClock]] = [:]
    /// The clock of every tombstone a node collected: a concurrent deletion that won its
    /// conflict leaves a tombstone whose merged clock covers the write it beat.
    var collected: [String: [VectorClock]] = [:]
    var operations = 0
    var refused = 0
}

/// The clients: register, update, heartbeat and deregister at random live nodes.
extension Simulation {
    func scheduleNextClientOperation() {
        let gap = Int64.random(in: 0...(2 * config.meanClientGapMillis), using: &workloadRNG)
        queue.schedule(.clientOperation, at: now + gap)
    }

    func clientOperation() {
        guard !healed, runsWorkload else { return }
        defer { scheduleNextClientOperation() }
        let up = upIndices
        guard !up.isEmpty else { return }
        let i = up[Int.random(in: 0..<up.count, using: &workloadRNG)]
        let k = Int.random(in: 0..<config.keyCount, using: &workloadRNG)
        let key = "i\(k)"
        let service = "svc\(k % 3)"
        guard nodes[i] != nil else { return }
        history.operations += 1
        let roll = Int.random(in: 0..<10, using: &workloadRNG)
        let outcome = mutateNode(i) { node -> ClientOutcome in
            let exists = node.state.instance(key) != nil
            if exists && roll < 3 {
                // Registry.commitHeartbeat with no TTL checks: a local renewal, batched to peers.
                guard (try? node.state.existingInstance(key, service: service)) != nil else { return .refused }
                let wall = node.clock.wall(now)
                node.heartbeats[key] = wall
                node.renewalOutbox.append(LeaseRenewal(instanceID: key, checkIDs: [], wallMillis: wall))
                return .renewed
            } else if exists && roll < 6 {
                // Registry.commitDeregister.
                guard let existing = try? node.state.existingInstance(key, service: service) else { return .refused }
                let committed = node.commitLocal(key: key, serviceName: existing.serviceName, instance: nil, now: now)
                history.tombstones[key, default: []].append(committed.record.clock)
                return .committed(committed)
            }
            // Registry.commitRegister: a create, or an update that changes the port and metadata.
            let wall = node.clock.wall(now)
            let requested = ServiceInstance(
                serviceName: service, instanceID: key, host: "10.0.\(i).\(k)",
                port: Int.random(in: 1024...65535, using: &workloadRNG),
                metadata: ["op": String(history.operations)], registeredAt: Timestamp(millisecondsSinceEpoch: wall),
                node: names[i])
            let (instance, _) = node.state.prepareRegistration(
                requested, requestedStatus: nil, now: Timestamp(millisecondsSinceEpoch: wall))
            node.heartbeats[key] = nil
            return .committed(node.commitLocal(key: key, serviceName: service, instance: instance, now: now))
        }
        switch outcome {
        case .committed(let committed):
            pendingAcks[i].append((committed.seq, AckedWrite(record: committed.record, node: i, at: now)))
            if committed.startFlush { scheduleFsync(i) }
            scheduleRumorFlush(i)
        case .renewed:
            scheduleRenewalFlush(i)
        case .refused, nil:
            break
        }
    }

    /// What one client operation did at its node.
    enum ClientOutcome {
        /// A write, acknowledged once its log sequence is durable.
        case committed((record: Record, seq: UInt64, startFlush: Bool))
        /// A heartbeat: a local renewal, batched to peers, with nothing to wait for.
        case renewed
        /// The node turned the operation down (the instance is not there under that service).
        case refused
    }

    /// Answers the clients whose writes the last fsync covered.
    func acknowledge(upTo durable: UInt64, at i: Int) {
        var remaining: [(seq: UInt64, write: AckedWrite)] = []
        for pending in pendingAcks[i] {
            if pending.seq <= durable {
                var write = pending.write
                write.at = now
                history.acked.append(write)
            } else {
                remaining.append(pending)
            }
        }
        pendingAcks[i] = remaining
    }
}
