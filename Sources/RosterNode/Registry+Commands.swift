import RosterCore

/// Commands. Each public entry point is nonisolated: it runs the decision and the commit on the
/// actor, then waits for the fsync outside it, so the actor keeps serving while the disk works.
extension Registry {
    /// Registers or updates an instance. `status` nil keeps the current status (or RUNNING).
    public nonisolated func register(_ instance: ServiceInstance, status: ServiceStatus?) async throws -> WriteResult {
        try await durable(await commitRegister(instance, status: status))
    }

    public nonisolated func deregister(_ instanceID: String, service: String? = nil) async throws -> WriteResult {
        try await durable(await commitDeregister(instanceID, service: service))
    }

    /// A lifecycle move, refused with `.conflict` when it makes no sense.
    public nonisolated func setStatus(_ instanceID: String, service: String?, to status: ServiceStatus) async throws -> WriteResult {
        try await durable(await commitStatus(instanceID, service: service, status: status))
    }

    /// A native heartbeat: renews the lease and passes the instance's TTL checks.
    public nonisolated func heartbeat(_ instanceID: String, service: String?) async throws -> WriteResult {
        try await durable(await commitHeartbeat(instanceID, service: service))
    }

    /// A check result from a client (Consul's pass/warn/fail/update). Renews a TTL check.
    public nonisolated func updateCheck(_ checkID: String, status: CheckStatus, output: String?) async throws -> WriteResult {
        try await durable(await commitCheck(checkID, status: status, output: output))
    }

    private nonisolated func durable(_ pending: (WriteResult, UInt64?)) async throws -> WriteResult {
        if let seq = pending.1 { try await wal.waitUntilDurable(seq) }
        return pending.0
    }

    // MARK: - On the actor

    func commitRegister(_ requested: ServiceInstance, status: ServiceStatus?) throws -> (WriteResult, UInt64?) {
        let (instance, created) = state.prepareRegistration(
            requested, requestedStatus: status, now: Timestamp(millisecondsSinceEpoch: clock.wallMillis()))
        heartbeats[instance.instanceID] = nil
        let (index, seq) = commitLocal(key: instance.instanceID, serviceName: instance.serviceName, instance: instance)
        if owns(instance) { armTTLChecks(of: instance, now: clock.monotonicMillis()) }
        return (WriteResult(instance: instance, created: created, index: index), seq)
    }

    func commitDeregister(_ id: String, service: String?) throws -> (WriteResult, UInt64?) {
        let existing = try state.existingInstance(id, service: service)
        let (index, seq) = commitLocal(key: id, serviceName: existing.serviceName, instance: nil)
        return (WriteResult(instance: nil, created: false, index: index), seq)
    }

    func commitStatus(_ id: String, service: String?, status: ServiceStatus) throws -> (WriteResult, UInt64?) {
        let current = try state.existingInstance(id, service: service)
        let updated = try state.prepareStatusMove(id, service: service, to: status)
        guard updated != current else { return (WriteResult(instance: present(current), created: false, index: nil), nil) }
        let (index, seq) = commitLocal(key: id, serviceName: updated.serviceName, instance: updated)
        return (WriteResult(instance: present(updated), created: false, index: index), seq)
    }

    func commitHeartbeat(_ id: String, service: String?) throws -> (WriteResult, UInt64?) {
        var instance = try state.existingInstance(id, service: service)
        let wall = clock.wallMillis()
        heartbeats[id] = Timestamp(millisecondsSinceEpoch: wall)
        armTTLChecks(of: instance, now: clock.monotonicMillis())
        onRenewal?(LeaseRenewal(instanceID: id, checkIDs: [], wallMillis: wall))
        var changed = false
        for i in instance.checks.indices where instance.checks[i].kind == .ttl && instance.checks[i].status != .passing {
            instance.checks[i].status = .passing
            instance.checks[i].output = "heartbeat received"
            changed = true
        }
        instance = instance.followingChecks()
        // Only a change of health is a replicated, logged write; a plain renewal stays local.
        guard changed else { return (WriteResult(instance: present(instance), created: false, index: nil), nil) }
        let (index, seq) = commitLocal(key: id, serviceName: instance.serviceName, instance: instance)
        return (WriteResult(instance: present(instance), created: false, index: index), seq)
    }

    func commitCheck(_ checkID: String, status: CheckStatus, output: String?) throws -> (WriteResult, UInt64?) {
        let (owner, position) = try state.locateCheck(checkID)
        armTTLChecks(of: owner, now: clock.monotonicMillis(), only: checkID)
        if owner.checks[position].kind == .ttl {
            onRenewal?(LeaseRenewal(instanceID: owner.instanceID, checkIDs: [checkID], wallMillis: clock.wallMillis()))
        }
        guard let updated = try state.prepareCheckUpdate(checkID, status: status, output: output) else {
            return (WriteResult(instance: present(owner), created: false, index: nil), nil)
        }
        let (index, seq) = commitLocal(key: updated.instanceID, serviceName: updated.serviceName, instance: updated)
        return (WriteResult(instance: present(updated), created: false, index: index), seq)
    }
}
