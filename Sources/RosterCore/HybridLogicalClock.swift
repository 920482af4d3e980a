/// A hybrid logical clock stamp (Kulkarni et al., 2014): physical milliseconds plus a logical
/// counter. Stamps respect causality (a write made after seeing a stamp gets a larger one) and
/// stay close to wall time, which makes them a fair tie-breaker for concurrent writes.
public struct HLCTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var physicalMillis: Int64
    public var logical: UInt32

    public init(physicalMillis: Int64, logical: UInt32) {
        self.physicalMillis = physicalMillis
        self.logical = logical
    }

    public static let zero = HLCTimestamp(physicalMillis: 0, logical: 0)

    public static func < (a: HLCTimestamp, b: HLCTimestamp) -> Bool {
        (a.physicalMillis, a.logical) < (b.physicalMillis, b.logical)
    }

    public var description: String { "\(physicalMillis).\(logical)" }
}

/// The clock state of one node. The physical time is passed in, so tests and the simulator
/// drive it with virtual time.
public struct HybridLogicalClock: Sendable {
    public private(set) var last: HLCTimestamp

    public init(last: HLCTimestamp = .zero) { self.last = last }

    /// A stamp for a local event, after everything this node has observed.
    public mutating func tick(physicalMillis: Int64) -> HLCTimestamp {
        if physicalMillis > last.physicalMillis {
            last = HLCTimestamp(physicalMillis: physicalMillis, logical: 0)
        } else {
            last.logical += 1
        }
        return last
    }

    /// Takes in a stamp seen from elsewhere, so that later local stamps follow it.
    public mutating func observe(_ remote: HLCTimestamp) {
        if remote > last { last = remote }
    }
}
