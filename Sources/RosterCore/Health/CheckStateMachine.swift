/// The outcome of one probe of an HTTP or TCP check.
public struct ProbeResult: Sendable, Equatable {
    public var status: CheckStatus
    public var output: String

    public init(status: CheckStatus, output: String) {
        self.status = status
        self.output = output
    }

    /// How an HTTP answer maps to a status: 2xx passing, 429 (Too Many Requests) warning, any
    /// other status critical, as in Consul.
    public static func httpStatus(_ code: Int) -> CheckStatus {
        switch code {
        case 200..<300: .passing
        case 429: .warning
        default: .critical
        }
    }
}

/// Consecutive probe outcomes of one check. Kept by the node that runs the check and not
/// replicated: a new owner starts counting afresh.
public struct CheckProgress: Sendable, Equatable {
    public var successes = 0
    public var failures = 0

    public init() {}
}

extension HealthCheck {
    /// Applies a probe result the way Consul's status handler does: passing and warning count
    /// as successes, critical as failures; the visible status moves only after
    /// `SuccessBeforePassing` consecutive successes or `FailuresBeforeCritical` consecutive
    /// failures (0 or 1 means at once), and until then status and output stay as they were.
    /// Returns whether status or output changed.
    public mutating func record(_ result: ProbeResult, progress: inout CheckProgress) -> Bool {
        let reached: Bool
        if result.status == .critical {
            progress.failures += 1
            progress.successes = 0
            reached = progress.failures >= failuresBeforeCritical
        } else {
            progress.successes += 1
            progress.failures = 0
            reached = progress.successes >= successBeforePassing
        }
        guard reached, status != result.status || output != result.output else { return false }
        status = result.status
        output = result.output
        return true
    }

    /// The default probe timeout: Consul's 10 s, but never longer than the interval, so a hung
    /// target cannot make probes of one check overlap.
    public var effectiveTimeoutMillis: Int64 {
        if let timeout { return timeout.milliseconds }
        return min(10_000, interval?.milliseconds ?? 10_000)
    }
}

extension ServiceInstance {
    /// The instance with its lifecycle status following its checks: RUNNING becomes UNHEALTHY
    /// when a check is critical, and UNHEALTHY becomes RUNNING when none is. STARTING, STOPPING,
    /// STOPPED and UNKNOWN are the service's own statement about itself and are left alone.
    public func followingChecks() -> ServiceInstance {
        var instance = self
        switch (status, checkStatus) {
        case (.running, .critical): instance.status = .unhealthy
        case (.unhealthy, .passing), (.unhealthy, .warning): instance.status = .running
        default: break
        }
        return instance
    }
}

extension RegistryState {
    /// The instance after a probe result for one of its checks, or nil when the check is gone,
    /// was redefined since the probe started, or nothing visible changed.
    public func prepareProbeResult(
        _ probed: ActiveCheck, result: ProbeResult, progress: inout CheckProgress
    ) -> ServiceInstance? {
        guard var instance = instance(probed.instanceID),
            let i = instance.checks.firstIndex(where: { $0.checkID == probed.checkID }),
            ActiveCheck(instance: instance, check: instance.checks[i]) == probed
        else { return nil }
        guard instance.checks[i].record(result, progress: &progress) else { return nil }
        return instance.followingChecks()
    }

    /// The instance after its TTL check `checkID` ran out, or nil if it is gone or already
    /// critical.
    public func prepareTTLExpiry(instanceID: String, checkID: String) -> ServiceInstance? {
        guard var instance = instance(instanceID),
            let i = instance.checks.firstIndex(where: { $0.checkID == checkID && $0.kind == .ttl }),
            instance.checks[i].status != .critical
        else { return nil }
        let ttl = instance.checks[i].ttl?.description ?? "its TTL"
        instance.checks[i].status = .critical
        instance.checks[i].output = "TTL expired: no update within \(ttl)"
        return instance.followingChecks()
    }
}
