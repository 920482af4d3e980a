import Foundation

/// The node's two clocks, injected so tests can drive time. Wall time is for display and HLC
/// stamps; monotonic time is for every timeout and expiry.
public struct NodeClock: Sendable {
    public var wallMillis: @Sendable () -> Int64
    public var monotonicMillis: @Sendable () -> Int64

    public init(wallMillis: @escaping @Sendable () -> Int64, monotonicMillis: @escaping @Sendable () -> Int64) {
        self.wallMillis = wallMillis
        self.monotonicMillis = monotonicMillis
    }

    public static let system = NodeClock(
        wallMillis: { Int64(Date().timeIntervalSince1970 * 1000) },
        monotonicMillis: { Int64(DispatchTime.now().uptimeNanoseconds / 1_000_000) })
}
