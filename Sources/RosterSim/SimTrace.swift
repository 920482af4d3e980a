/// The last events of a run, kept in a ring so that a failure can say what led up to it
/// without the cost of logging every event of every run in a sweep.
public struct SimTrace: Sendable {
    public struct Line: Sendable, CustomStringConvertible {
        public var at: Int64
        public var text: String
        public var description: String { "t=\(at)ms \(text)" }
    }

    private var ring: [Line?]
    private var next = 0
    /// When set, every line is also printed as it happens (`roster-sim --seed N --verbose`).
    public var echo = false

    public init(capacity: Int = 60) {
        ring = Array(repeating: nil, count: max(1, capacity))
    }

    mutating func add(_ at: Int64, _ text: @autoclosure () -> String) {
        let line = Line(at: at, text: text())
        if echo { print(line) }
        ring[next] = line
        next = (next + 1) % ring.count
    }

    /// The kept lines, oldest first.
    public var lines: [Line] {
        (ring[next...] + ring[..<next]).compactMap { $0 }
    }
}
