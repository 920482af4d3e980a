import RosterCore

extension Simulation {
    /// Runs one seed: start every node, run clients and faults for the fault phase, heal,
    /// then wait for convergence and check every invariant.
    public func run() -> SimResult {
        for i in 0..<config.nodeCount { start(i) }
        scheduleNextClientOperation()
        scheduleNextFault()
        queue.schedule(.heal, at: config.faultPhaseMillis)
        let deadline = config.faultPhaseMillis + config.convergenceDeadlineMillis
        run(until: deadline) { convergedAt != nil || bounds.violation != nil }
        // Converged once; now let writes still in their fsync finish (so every acknowledgement
        // is counted), then demand convergence again: the first time must not have been luck.
        let firstConvergence = convergedAt
        if firstConvergence != nil {
            run(until: now + 3 * config.antiEntropyMillis)
            convergedAt = nil
            queue.schedule(.checkConvergence, at: now)
            run(until: now + config.convergenceDeadlineMillis) { convergedAt != nil || bounds.violation != nil }
        }
        return result(firstConvergence: firstConvergence)
    }

    func result(firstConvergence: Int64?) -> SimResult {
        var failures: [String] = []
        if let violation = bounds.violation { failures.append(violation) }
        if convergedAt == nil {
            failures.append("no convergence within \(config.convergenceDeadlineMillis) ms of the heal")
            failures += convergenceProblems().prefix(6)
        }
        let lost = lostWrites()
        let resurrected = resurrections()
        failures += lost + resurrected
        if history.acked.isEmpty && runsWorkload { failures.append("the clients got no write acknowledged: the run tested nothing") }
        return SimResult(
            config: config, failures: failures, convergenceMillis: convergedAt == nil ? nil : firstConvergence.map { $0 - healedAt },
            ackedWrites: history.acked.count, lostWrites: lost.count, resurrections: resurrected.count,
            operations: history.operations, trace: trace.lines)
    }

    /// Runs one seed with the shape `SimConfig.random(seed:)` draws for it.
    public static func run(seed: UInt64, verbose: Bool = false) -> SimResult {
        let simulation = Simulation(config: .random(seed: seed))
        simulation.trace.echo = verbose
        return simulation.run()
    }
}
