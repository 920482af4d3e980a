import Foundation
import HummingbirdCore

/// Query parameters decoded as Go's `url.ParseQuery` does (which Consul's clients rely on): `+` is
/// a space, then percent-escapes are decoded. Hummingbird's own accessor leaves `+` alone, so
/// py-consul's `?note=disk+full` would read as "disk+full".
struct QueryParameters {
    private var pairs: [(String, String)] = []

    init(_ uri: URI) {
        guard let query = uri.query, !query.isEmpty else { return }
        for part in query.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            pairs.append((QueryParameters.decode(kv[0]), kv.count > 1 ? QueryParameters.decode(kv[1]) : ""))
        }
    }

    private static func decode(_ raw: Substring) -> String {
        let spaced = raw.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }

    /// The last value given for `name`.
    func get(_ name: String) -> String? { pairs.last { $0.0 == name }?.1 }

    /// Every non-empty value given for `name`, e.g. repeated `?tag=`.
    func all(_ name: String) -> [String] { pairs.filter { $0.0 == name && !$0.1.isEmpty }.map(\.1) }

    /// Whether a flag such as `?passing` is set: present, and not `false` or `0`.
    func flag(_ name: String) -> Bool {
        guard let value = get(name) else { return false }
        return !["false", "0"].contains(value.lowercased())
    }

    /// As a dictionary; the last value wins for repeated keys.
    var map: [String: String] {
        var map: [String: String] = [:]
        for (key, value) in pairs { map[key] = value }
        return map
    }
}

extension URI {
    /// The query decoded with form rules (`+` is a space).
    var form: QueryParameters { QueryParameters(self) }
}
