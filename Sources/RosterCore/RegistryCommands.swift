/// Why a registry command was refused. Each maps to one HTTP status in the API layer.
public enum RegistryError: Error, Sendable, Equatable {
    /// The input is malformed or out of bounds (400).
    case invalid(ValidationError)
    /// The instance or check does not exist (404).
    case notFound(field: String, message: String)
    /// The command is well-formed but not allowed in the current state (409).
    case conflict(field: String, message: String)
}

/// The pure decision logic of registry commands: given the state and a request, what the new
/// instance value is. The actor turns the answer into a record, logs it and applies it.
extension RegistryState {
    /// The value a registration stores, and whether it creates the instance.
    ///
    /// Re-registering keeps `registered_at`, keeps the state of checks whose definition did not
    /// change (Consul does the same, so a re-registration does not flap health), and keeps the
    /// lifecycle status unless the request names one.
    public func prepareRegistration(
        _ requested: ServiceInstance, requestedStatus: ServiceStatus?, now: Timestamp
    ) -> (instance: ServiceInstance, created: Bool) {
        var instance = requested
        instance.lastHeartbeat = now
        guard let existing = self.instance(requested.instanceID) else {
            instance.registeredAt = now
            instance.status = requestedStatus ?? .running
            return (instance, true)
        }
        instance.registeredAt = existing.registeredAt
        instance.status = requestedStatus ?? existing.status
        instance.checks = requested.checks.map { check in
            guard let old = existing.checks.first(where: { $0.checkID == check.checkID }),
                old.sameDefinition(as: check)
            else { return check }
            return old
        }
        return (instance, false)
    }

    /// Looks up a live instance, checking that it belongs to `service` when one is named.
    public func existingInstance(_ id: String, service: String?) throws(RegistryError) -> ServiceInstance {
        guard let instance = self.instance(id), service == nil || instance.serviceName == service else {
            let owner = service.map { " of service '\($0)'" } ?? ""
            throw .notFound(field: "instance_id", message: "no instance '\(id)'\(owner) is registered")
        }
        return instance
    }

    /// The instance after a lifecycle move, or `.conflict` if the move makes no sense.
    public func prepareStatusMove(
        _ id: String, service: String?, to status: ServiceStatus
    ) throws(RegistryError) -> ServiceInstance {
        var instance = try existingInstance(id, service: service)
        guard instance.status.canMove(to: status) else {
            let allowed = instance.status.allowedMoves.map(\.rawValue).joined(separator: ", ")
            throw .conflict(
                field: "status",
                message: "cannot move '\(id)' from \(instance.status.rawValue) to \(status.rawValue); allowed: \(allowed)")
        }
        instance.status = status
        return instance
    }

    /// The instance owning `checkID`, and the check's position in it.
    public func locateCheck(_ checkID: String) throws(RegistryError) -> (instance: ServiceInstance, index: Int) {
        // Consul's check IDs embed the service id (`service:<id>[:n]`), which makes this O(1).
        if checkID.hasPrefix("service:") {
            let rest = checkID.dropFirst("service:".count)
            let serviceID = rest.split(separator: ":", maxSplits: 1).first.map(String.init) ?? String(rest)
            if let instance = self.instance(serviceID), let i = instance.checks.firstIndex(where: { $0.checkID == checkID }) {
                return (instance, i)
            }
        }
        for record in records.values {
            if let instance = record.instance, let i = instance.checks.firstIndex(where: { $0.checkID == checkID }) {
                return (instance, i)
            }
        }
        throw .notFound(field: "check_id", message: "no check '\(checkID)' is registered")
    }

    /// The instance after a check result, with its status following its checks, or nil if
    /// nothing changed.
    public func prepareCheckUpdate(
        _ checkID: String, status: CheckStatus, output: String?
    ) throws(RegistryError) -> ServiceInstance? {
        let (existing, i) = try locateCheck(checkID)
        var instance = existing
        instance.checks[i].status = status
        instance.checks[i].output = output ?? existing.checks[i].output
        instance = instance.followingChecks()
        return instance == existing ? nil : instance
    }
}
