/// A semantic version (semver 2.0): `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`.
///
/// Parsing is lenient where registries meet real-world version strings: a leading `v` is allowed
/// (`v1.2.3`) and missing components are zero (`1.2` is `1.2.0`). Ordering is semver 2.0
/// precedence: numeric components compare as numbers, a pre-release sorts before its release,
/// pre-release identifiers compare one by one (numeric ones as numbers and below alphanumeric
/// ones), and build metadata is ignored, including by `==`.
public struct SemanticVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int
    public var preRelease: [PreReleaseIdentifier]
    /// Build metadata: kept for display, ignored for precedence and equality.
    public var build: [String]

    public init(major: Int, minor: Int, patch: Int, preRelease: [PreReleaseIdentifier] = [], build: [String] = []) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.preRelease = preRelease
        self.build = build
    }

    /// Parses `1.2.3`, `1.2`, `1`, `v1.2.3`, `1.2.3-rc.1`, `1.2.3-rc.1+build.5`. Nil if it is not one.
    public init?(_ text: String) {
        guard let partial = PartialVersion(text) else { return nil }
        self = partial.version
    }

    public var isPreRelease: Bool { !preRelease.isEmpty }

    public var description: String {
        var text = "\(major).\(minor).\(patch)"
        if !preRelease.isEmpty { text += "-" + preRelease.map(\.description).joined(separator: ".") }
        if !build.isEmpty { text += "+" + build.joined(separator: ".") }
        return text
    }

    /// Whether both name the same release line, ignoring pre-release and build.
    func sameCore(as other: SemanticVersion) -> Bool {
        major == other.major && minor == other.minor && patch == other.patch
    }

    public static func == (a: SemanticVersion, b: SemanticVersion) -> Bool {
        a.sameCore(as: b) && a.preRelease == b.preRelease
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(major)
        hasher.combine(minor)
        hasher.combine(patch)
        hasher.combine(preRelease)
    }

    public static func < (a: SemanticVersion, b: SemanticVersion) -> Bool {
        if a.major != b.major { return a.major < b.major }
        if a.minor != b.minor { return a.minor < b.minor }
        if a.patch != b.patch { return a.patch < b.patch }
        // A release has higher precedence than any of its pre-releases.
        switch (a.preRelease.isEmpty, b.preRelease.isEmpty) {
        case (true, true), (true, false): return false
        case (false, true): return true
        case (false, false): break
        }
        for (x, y) in zip(a.preRelease, b.preRelease) where x != y { return x < y }
        // A larger set of identifiers has higher precedence when all before are equal.
        return a.preRelease.count < b.preRelease.count
    }
}

/// One dot-separated part of a pre-release: `rc`, `1`, `alpha-2`.
public enum PreReleaseIdentifier: Sendable, Hashable, Comparable, CustomStringConvertible {
    case numeric(Int)
    case alphanumeric(String)

    init?(_ text: Substring) {
        guard !text.isEmpty, text.utf8.allSatisfy(PreReleaseIdentifier.isIdentifierByte) else { return nil }
        if text.utf8.allSatisfy(isDigit) {
            guard let value = Int(text) else { return nil }
            self = .numeric(value)
        } else {
            self = .alphanumeric(String(text))
        }
    }

    static func isIdentifierByte(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == UInt8(ascii: "-")
    }

    public var description: String {
        switch self {
        case .numeric(let value): "\(value)"
        case .alphanumeric(let text): text
        }
    }

    /// Numeric identifiers compare numerically and sort below alphanumeric ones, which compare in
    /// ASCII order.
    public static func < (a: PreReleaseIdentifier, b: PreReleaseIdentifier) -> Bool {
        switch (a, b) {
        case (.numeric(let x), .numeric(let y)): x < y
        case (.numeric, .alphanumeric): true
        case (.alphanumeric, .numeric): false
        case (.alphanumeric(let x), .alphanumeric(let y)): Array(x.utf8).lexicographicallyPrecedes(y.utf8)
        }
    }
}

private func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

/// A version as written, remembering how many numeric components it had: in a range, `1.2`
/// stands for every `1.2.x`, which is not the same as `1.2.0`.
struct PartialVersion: Sendable {
    var version: SemanticVersion
    /// 1, 2 or 3.
    var components: Int

    init?(_ text: String) {
        var rest = Substring(text)
        if rest.first == "v" || rest.first == "V" { rest = rest.dropFirst() }
        var build: [String] = []
        if let plus = rest.firstIndex(of: "+") {
            let parts = rest[rest.index(after: plus)...].split(separator: ".", omittingEmptySubsequences: false)
            guard parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(PreReleaseIdentifier.isIdentifierByte) }) else { return nil }
            build = parts.map(String.init)
            rest = rest[..<plus]
        }
        var preRelease: [PreReleaseIdentifier] = []
        if let dash = rest.firstIndex(of: "-") {
            var identifiers: [PreReleaseIdentifier] = []
            for part in rest[rest.index(after: dash)...].split(separator: ".", omittingEmptySubsequences: false) {
                guard let identifier = PreReleaseIdentifier(part) else { return nil }
                identifiers.append(identifier)
            }
            preRelease = identifiers
            rest = rest[..<dash]
        }
        let numbers = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...3).contains(numbers.count) else { return nil }
        var values: [Int] = []
        for number in numbers {
            guard !number.isEmpty, number.utf8.allSatisfy(isDigit), let value = Int(number) else { return nil }
            values.append(value)
        }
        components = values.count
        while values.count < 3 { values.append(0) }
        version = SemanticVersion(major: values[0], minor: values[1], patch: values[2], preRelease: preRelease, build: build)
    }

    /// The first version above every version this one stands for: `1.2` → `1.3.0`, `1` → `2.0.0`,
    /// `1.2.3` → `1.2.4`. Nil if a component cannot be raised.
    func nextAfterWildcard() -> SemanticVersion? {
        let v = version
        switch components {
        case 1: return v.major == Int.max ? nil : SemanticVersion(major: v.major + 1, minor: 0, patch: 0)
        case 2: return v.minor == Int.max ? nil : SemanticVersion(major: v.major, minor: v.minor + 1, patch: 0)
        default: return v.patch == Int.max ? nil : SemanticVersion(major: v.major, minor: v.minor, patch: v.patch + 1)
        }
    }
}

/// A version range: a conjunction of comparators such as `>=1.2 <2.0`, with npm's shorthands.
///
/// | written     | means                       |
/// |-------------|-----------------------------|
/// | `>=1.2`     | `>=1.2.0`                   |
/// | `>1.2`      | `>=1.3.0` (above all 1.2.x) |
/// | `<2`        | `<2.0.0`                    |
/// | `<=2.0`     | `<2.1.0` (up to all 2.0.x)  |
/// | `=1.2.3`    | exactly 1.2.3               |
/// | `=1.2`, `1.2` inside a range | `>=1.2.0 <1.3.0` |
/// | `~1.2.3`    | `>=1.2.3 <1.3.0`            |
/// | `~1`        | `>=1.0.0 <2.0.0`            |
/// | `^1.2.3`    | `>=1.2.3 <2.0.0`            |
/// | `^0.2.3`    | `>=0.2.3 <0.3.0`            |
/// | `^0.0.3`    | `>=0.0.3 <0.0.4`            |
///
/// Pre-releases follow npm: a version such as `2.0.0-rc.1` is in a range only if one of the
/// range's comparators names a pre-release of the same `2.0.0`, so `>=1.2 <2` does not pick up
/// `2.0.0-rc.1` and `>=1.0` does not pick up `1.5.0-beta`, while `>=2.0.0-rc.1` takes `2.0.0-rc.2`.
public struct VersionRange: Sendable, Hashable, CustomStringConvertible {
    public enum Operator: String, Sendable, Hashable {
        case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">=", equal = "="
    }

    public struct Comparator: Sendable, Hashable, CustomStringConvertible {
        public var op: Operator
        public var version: SemanticVersion

        public init(_ op: Operator, _ version: SemanticVersion) {
            self.op = op
            self.version = version
        }

        public func matches(_ candidate: SemanticVersion) -> Bool {
            switch op {
            case .less: candidate < version
            case .lessOrEqual: candidate <= version
            case .greater: candidate > version
            case .greaterOrEqual: candidate >= version
            case .equal: candidate == version
            }
        }

        public var description: String { "\(op.rawValue)\(version)" }
    }

    /// Why a range could not be parsed, worded for an API error.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The most comparators one expression may hold, so a query cannot make matching expensive.
    public static let maxTerms = 16

    /// The comparators every matching version satisfies, after shorthands are expanded.
    public let comparators: [Comparator]
    /// What the client wrote.
    public let text: String

    /// Characters that start a range rather than an exact version.
    public static let operatorCharacters: Set<Character> = [">", "<", "=", "^", "~"]

    /// Whether `text` is a range expression (starts with an operator) rather than an exact version.
    public static func isRangeExpression(_ text: String) -> Bool {
        guard let first = text.first(where: { !$0.isWhitespace }) else { return false }
        return operatorCharacters.contains(first)
    }

    public init(_ text: String) throws(ParseError) {
        self.text = text
        // An operator may be separated from its version by spaces (`>= 1.2`): rejoin those.
        var terms: [String] = []
        var pendingOperator: String?
        for token in text.split(whereSeparator: \.isWhitespace).map(String.init) {
            if let op = pendingOperator {
                terms.append(op + token)
                pendingOperator = nil
            } else if token.allSatisfy(VersionRange.operatorCharacters.contains) {
                pendingOperator = token
            } else {
                terms.append(token)
            }
        }
        if let op = pendingOperator {
            throw ParseError(message: "'\(text)': operator '\(op)' is not followed by a version")
        }
        guard !terms.isEmpty else { throw ParseError(message: "is empty; write a range such as '>=1.2 <2'") }
        guard terms.count <= VersionRange.maxTerms else {
            throw ParseError(message: "'\(text)' has more than \(VersionRange.maxTerms) comparators")
        }
        var comparators: [Comparator] = []
        for term in terms {
            comparators += try VersionRange.expand(term, in: text)
        }
        self.comparators = comparators
    }

    /// A range made of the given comparators, as written.
    public init(comparators: [Comparator]) {
        self.comparators = comparators
        self.text = comparators.map(\.description).joined(separator: " ")
    }

    public var description: String { text }

    public func contains(_ version: SemanticVersion) -> Bool {
        if version.isPreRelease {
            let allowed = comparators.contains { $0.version.isPreRelease && $0.version.sameCore(as: version) }
            if !allowed { return false }
        }
        return comparators.allSatisfy { $0.matches(version) }
    }

    /// Whether the version string parses and is in the range; an unparsable version is not.
    public func contains(versionString: String?) -> Bool {
        guard let versionString, let version = SemanticVersion(versionString) else { return false }
        return contains(version)
    }

    /// One written term (`^1.2`, `>=1.0.0-rc.1`, `1.2`) as the comparators it stands for.
    private static func expand(_ term: String, in text: String) throws(ParseError) -> [Comparator] {
        let operators = ["<=", ">=", "<", ">", "=", "^", "~"]
        let op = operators.first { term.hasPrefix($0) } ?? ""
        let rest = String(term.dropFirst(op.count))
        guard let partial = PartialVersion(rest) else {
            if rest.first.map(operatorCharacters.contains) == true {
                throw ParseError(message: "'\(term)' in '\(text)' is not a comparator; use one of <, <=, >, >=, =, ^, ~")
            }
            throw ParseError(message: "'\(rest)' in '\(text)' is not a version such as 1.2.3, 1.2 or 1.2.3-rc.1")
        }
        let v = partial.version
        func next(_ p: PartialVersion) throws(ParseError) -> SemanticVersion {
            guard let next = p.nextAfterWildcard() else { throw ParseError(message: "'\(rest)' in '\(text)' is too large") }
            return next
        }
        switch op {
        case ">=": return [Comparator(.greaterOrEqual, v)]
        case "<": return [Comparator(.less, v)]
        case ">":
            return partial.components == 3 ? [Comparator(.greater, v)] : [Comparator(.greaterOrEqual, try next(partial))]
        case "<=":
            return partial.components == 3 ? [Comparator(.lessOrEqual, v)] : [Comparator(.less, try next(partial))]
        case "~":
            // Patch-level changes, or minor-level ones if only the major is given.
            var line = partial
            line.components = min(partial.components, 2)
            return [Comparator(.greaterOrEqual, v), Comparator(.less, try next(line))]
        case "^":
            // Changes that keep the left-most non-zero component.
            var line = partial
            if v.major > 0 || partial.components == 1 {
                line.components = 1
            } else if v.minor > 0 || partial.components == 2 {
                line.components = 2
            } else {
                line.components = 3
            }
            return [Comparator(.greaterOrEqual, v), Comparator(.less, try next(line))]
        default:
            // `=` or a bare version: exact when complete, the whole line when partial.
            if partial.components == 3 { return [Comparator(.equal, v)] }
            return [Comparator(.greaterOrEqual, v), Comparator(.less, try next(partial))]
        }
    }
}
