import RosterCore

/// One fault that ends by itself: the cuts it made are undone, or the node it crashed restarts.
enum FaultEpisode {
    case cuts([(from: Int, to: Int)], label: String)
    case crash(node: Int)
}

/// Fault injection during the fault phase, and the heal that ends it.
extension Simulation {
    func scheduleNextFault() {
        let gap = Int64.random(in: 0...(2 * config.meanFaultGapMillis), using: &faultRNG)
        if now + gap < config.faultPhaseMillis { queue.schedule(.fault, at: now + gap) }
    }

    func injectFault() {
        defer { scheduleNextFault() }
        guard !healed else { return }
        let n = config.nodeCount
        let duration = Int64.random(in: 300...config.maxFaultMillis, using: &faultRNG)
        let all = Array(0..<n)
        switch Int.random(in: 0..<4, using: &faultRNG) {
        case 0:
            let up = upIndices
            guard up.count > 1 else { return }
            let victim = up[Int.random(in: 0..<up.count, using: &faultRNG)]
            crash(victim)
            queue.schedule(.endFault(.crash(node: victim)), at: now + duration)
        case 1:
            // A symmetric partition into two sides.
            let shuffled = all.shuffled(using: &faultRNG)
            let split = Int.random(in: 1..<n, using: &faultRNG)
            let left = Array(shuffled[..<split]), right = Array(shuffled[split...])
            let pairs = left.flatMap { a in right.flatMap { b in [(from: a, to: b), (from: b, to: a)] } }
            applyCuts(pairs, label: "partition \(left.map { names[$0] }) | \(right.map { names[$0] })", duration: duration)
        case 2:
            // An asymmetric partition: one side hears the other, but not the other way round.
            let shuffled = all.shuffled(using: &faultRNG)
            let split = Int.random(in: 1..<n, using: &faultRNG)
            let deaf = Array(shuffled[..<split]), rest = Array(shuffled[split...])
            let pairs = rest.flatMap { a in deaf.map { b in (from: a, to: b) } }
            applyCuts(pairs, label: "one-way cut \(rest.map { names[$0] }) -/-> \(deaf.map { names[$0] })", duration: duration)
        default:
            let node = Int.random(in: 0..<n, using: &faultRNG)
            let pairs = all.filter { $0 != node }.flatMap { b in [(from: node, to: b), (from: b, to: node)] }
            applyCuts(pairs, label: "isolate \(names[node])", duration: duration)
        }
    }

    private func applyCuts(_ pairs: [(from: Int, to: Int)], label: String, duration: Int64) {
        for pair in pairs { network.cut(from: pair.from, to: pair.to) }
        trace.add(now, "fault: \(label) for \(duration) ms")
        queue.schedule(.endFault(.cuts(pairs, label: label)), at: now + duration)
    }

    func endFault(_ episode: FaultEpisode) {
        guard !healed else { return }
        switch episode {
        case .cuts(let pairs, let label):
            for pair in pairs { network.uncut(from: pair.from, to: pair.to) }
            trace.add(now, "fault ends: \(label)")
        case .crash(let node):
            queue.schedule(.restart(node: node), at: now)
        }
    }

    /// Faults stop: every cut heals, loss and duplication stop, crashed nodes restart (but one,
    /// if the config leaves one down), and the clients stop writing.
    func heal() {
        healed = true
        healedAt = now
        network.heal()
        var down = nodes.indices.filter { nodes[$0] == nil }
        if config.leaveOneDown {
            if down.isEmpty {
                let victim = Int.random(in: 0..<config.nodeCount, using: &faultRNG)
                crash(victim)
                down = [victim]
            }
            down.removeFirst()
        }
        for i in down {
            trace.add(now, "heal: \(names[i]) restarts as generation \(generations[i] + 1)")
            start(i)
        }
        trace.add(now, "heal: the network is whole, no more faults or client writes")
        queue.schedule(.checkConvergence, at: now + 50)
    }
}
