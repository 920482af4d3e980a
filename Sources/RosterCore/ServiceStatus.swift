/// The lifecycle of a service instance.
///
/// The normal progression is STARTING → RUNNING → STOPPING → STOPPED. Health moves a live
/// instance to UNHEALTHY or UNKNOWN and back to RUNNING on recovery. Anything else is refused,
/// so that a late or confused client cannot, say, revive a STOPPED instance by status alone:
/// only a new registration does that.
public enum ServiceStatus: String, Codable, Sendable, CaseIterable, Hashable {
    case starting = "STARTING"
    case running = "RUNNING"
    case stopping = "STOPPING"
    case stopped = "STOPPED"
    case unhealthy = "UNHEALTHY"
    case unknown = "UNKNOWN"

    /// Whether `self → next` is a lifecycle move that makes sense. Staying put is always allowed.
    public func canMove(to next: ServiceStatus) -> Bool {
        if next == self { return true }
        switch (self, next) {
        case (.starting, .running), (.running, .stopping), (.stopping, .stopped):
            return true
        case (.starting, .unhealthy), (.starting, .unknown),
            (.running, .unhealthy), (.running, .unknown),
            (.unhealthy, .unknown), (.unknown, .unhealthy):
            return true
        case (.unhealthy, .running), (.unknown, .running):
            return true
        case (.starting, .stopping), (.unhealthy, .stopping), (.unknown, .stopping):
            return true
        default:
            return false
        }
    }

    /// The statuses a move from `self` may reach, for error messages.
    public var allowedMoves: [ServiceStatus] {
        ServiceStatus.allCases.filter { $0 != self && canMove(to: $0) }
    }
}
