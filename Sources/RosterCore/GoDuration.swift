/// A duration in milliseconds that reads and writes Go's duration syntax (`"10s"`, `"1m30s"`,
/// `"250ms"`), because Consul clients send durations that way.
public struct GoDuration: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public static func seconds(_ s: Int64) -> GoDuration { GoDuration(milliseconds: s * 1000) }

    public static func < (a: GoDuration, b: GoDuration) -> Bool { a.milliseconds < b.milliseconds }

    /// Parses `"1h2m3s"`, `"1.5s"`, `"300ms"`, `"10us"`; a bare number is taken as seconds.
    public init?(parsing text: String) {
        let s = text.trimmingWhitespace()
        guard !s.isEmpty else { return nil }
        if let seconds = Double(s) {
            guard seconds >= 0, seconds < 1e12 else { return nil }
            self.milliseconds = Int64(seconds * 1000)
            return
        }
        var total = 0.0
        var chars = Substring(s)
        while !chars.isEmpty {
            let number = chars.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            chars = chars.dropFirst(number.count)
            let unit = chars.prefix { $0.isLetter || $0 == "µ" }
            chars = chars.dropFirst(unit.count)
            guard let scale = GoDuration.unitMilliseconds[String(unit)] else { return nil }
            total += value * scale
        }
        guard total >= 0, total < 1e15 else { return nil }
        self.milliseconds = Int64(total.rounded())
    }

    private static let unitMilliseconds: [String: Double] = [
        "ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000,
    ]

    public var description: String {
        if milliseconds == 0 { return "0s" }
        if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Double.self) {
            // Consul's JSON sometimes carries nanoseconds as integers; seconds are more common
            // from hand-written clients. Values this large can only be nanoseconds.
            self.milliseconds = number > 1e9 ? Int64(number / 1e6) : Int64(number * 1000)
            return
        }
        let text = try container.decode(String.self)
        guard let parsed = GoDuration(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not a duration such as \"10s\" or \"1m30s\"")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
