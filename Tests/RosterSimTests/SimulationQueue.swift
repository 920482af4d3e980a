import Dispatch

/// Runs CPU-bound simulation on a serial queue of its own and awaits the result.
///
/// Swift Testing runs test functions on the cooperative pool, which has one thread per core:
/// two in CI. The sweep computes for minutes; on a pool thread it, with the scale test beside
/// it, left every other suite without a thread for about 19 s, and the loopback DNS server
/// (which answers on that pool) let `dig` time out. One serial queue keeps the simulations to
/// one core, one at a time, and leaves the pool to the suites that do I/O. Expectations stay
/// in the test's task, which is where Swift Testing records them.
func onSimulationQueue<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        simulationQueue.async { continuation.resume(returning: work()) }
    }
}

private let simulationQueue = DispatchQueue(label: "roster.tests.simulation")
