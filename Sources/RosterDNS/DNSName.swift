/// A domain name as a list of labels, kept as bytes because DNS labels are bytes, not text: a
/// label may even contain a dot, which a dotted string could not tell apart from a separator.
///
/// Equality is exact (it preserves the sender's case, which a response must echo); name
/// matching goes through `lowercasedLabels` and `hasSuffix(_:)`, which ignore ASCII case as
/// RFC 4343 requires.
public struct DNSName: Hashable, Sendable, CustomStringConvertible {
    /// The longest name on the wire, length bytes and the root's zero included.
    public static let maxWireLength = 255
    public static let maxLabelLength = 63
    public static let root = DNSName(validatedLabels: [])

    public let labels: [[UInt8]]

    init(validatedLabels: [[UInt8]]) {
        labels = validatedLabels
    }

    /// Checks the RFC 1035 limits, so that every `DNSName` can be written without a check.
    public init(labels: [[UInt8]]) throws(DNSWireError) {
        var wireLength = 1
        for label in labels {
            guard !label.isEmpty else { throw .emptyLabel }
            guard label.count <= Self.maxLabelLength else { throw .labelTooLong(length: label.count) }
            wireLength += label.count + 1
        }
        guard wireLength <= Self.maxWireLength else { throw .nameTooLong }
        self.labels = labels
    }

    /// Parses dotted text such as `web.service.roster.`; the final dot is optional and `.` is
    /// the root. Escapes are not supported: names here come from configuration and registrations.
    public init(_ text: String) throws(DNSWireError) {
        if text == "." || text.isEmpty {
            self = .root
            return
        }
        var parts = text.split(separator: ".", omittingEmptySubsequences: false)
        if parts.last?.isEmpty == true { parts.removeLast() }
        try self.init(labels: parts.map { Array($0.utf8) })
    }

    /// The name's length on the wire without compression.
    public var wireLength: Int { labels.reduce(1) { $0 + $1.count + 1 } }

    /// The labels in ASCII lower case, as text, for matching.
    public var lowercasedLabels: [String] {
        labels.map { String(decoding: Self.lowercased($0), as: UTF8.self) }
    }

    /// Whether the name ends with `suffix`, ignoring ASCII case.
    public func hasSuffix(_ suffix: DNSName) -> Bool {
        guard suffix.labels.count <= labels.count else { return false }
        return zip(labels.suffix(suffix.labels.count), suffix.labels).allSatisfy {
            Self.lowercased($0) == Self.lowercased($1)
        }
    }

    /// The labels in front of `suffix`, or nil if the name is not under it.
    public func labels(before suffix: DNSName) -> [[UInt8]]? {
        hasSuffix(suffix) ? Array(labels.dropLast(suffix.labels.count)) : nil
    }

    /// `self` followed by `other`, e.g. a label prepended to a domain.
    public func appending(_ other: DNSName) throws(DNSWireError) -> DNSName {
        try DNSName(labels: labels + other.labels)
    }

    /// Dotted text with a final dot; bytes that are not printable ASCII, and dots or backslashes
    /// inside a label, are escaped as in zone files, so that logs show what was really asked.
    public var description: String {
        guard !labels.isEmpty else { return "." }
        return labels.map { label in
            label.map { byte -> String in
                switch byte {
                case UInt8(ascii: "."), UInt8(ascii: "\\"): "\\" + String(UnicodeScalar(byte))
                case 0x21...0x7E: String(UnicodeScalar(byte))
                default: "\\" + String(repeating: "0", count: byte < 10 ? 2 : byte < 100 ? 1 : 0) + String(byte)
                }
            }.joined()
        }.joined(separator: ".") + "."
    }

    static func lowercased(_ label: [UInt8]) -> [UInt8] {
        label.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }
    }
}
