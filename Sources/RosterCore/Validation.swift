/// A user-facing input problem: which field, and what would be right.
public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// Size bounds on everything a client can send. They keep one client from exhausting a node's
/// memory or bloating every replica, and they follow Consul's limits where Consul has one.
public struct InputLimits: Sendable {
    public var maxBodyBytes = 512 * 1024
    public var maxLabelLength = 63
    public var maxHostLength = 253
    public var maxTags = 64
    public var maxTagLength = 255
    public var maxMetadataPairs = 64
    public var maxMetadataKeyLength = 128
    public var maxMetadataValueLength = 512
    public var maxListItems = 64
    public var maxEndpointValueLength = 1024
    public var maxChecks = 16
    public var maxCheckTargetLength = 2048
    public var maxNoteLength = 4096
    public var minCheckInterval = GoDuration(milliseconds: 1000)

    public init() {}
    public static let standard = InputLimits()
}

/// Validates instances before they enter the registry, so nothing invalid is ever stored or
/// replicated. Field names in errors use the native API's snake_case names.
public struct InstanceValidator: Sendable {
    public var limits: InputLimits

    public init(limits: InputLimits = .standard) { self.limits = limits }

    /// - Parameter portRequired: Consul lets a service omit its port (stored as 0); the native
    ///   API requires one.
    public func validate(_ instance: ServiceInstance, portRequired: Bool = true) throws(ValidationError) {
        try validateServiceName(instance.serviceName, field: "service_name")
        try validateInstanceID(instance.instanceID, field: "instance_id")
        try check(!instance.host.isEmpty, "host", "must not be empty")
        try check(instance.host.utf8.count <= limits.maxHostLength, "host", "is longer than \(limits.maxHostLength) bytes")
        try check(!instance.host.contains(where: \.isWhitespace), "host", "must not contain spaces")
        let ports = portRequired ? 1...65535 : 0...65535
        try check(ports.contains(instance.port), "port", "must be between 1 and 65535, got \(instance.port)")
        try validateList(instance.tags, field: "tags", maxLength: limits.maxTagLength)
        try validateMap(instance.metadata, field: "metadata", maxValue: limits.maxMetadataValueLength)
        try validateList(instance.capabilities, field: "capabilities", maxLength: limits.maxTagLength)
        try validateList(instance.dependencies, field: "dependencies", maxLength: limits.maxTagLength)
        try validateMap(instance.endpoints, field: "endpoints", maxValue: limits.maxEndpointValueLength)
        if let version = instance.version {
            try check(version.utf8.count <= limits.maxTagLength, "version", "is longer than \(limits.maxTagLength) bytes")
        }
        for (field, value) in [("region", instance.region), ("zone", instance.zone)] {
            guard let value else { continue }
            try check(value.utf8.count <= limits.maxLabelLength, field, "is longer than \(limits.maxLabelLength) bytes")
            try check(!value.contains(where: \.isWhitespace), field, "must not contain spaces")
        }
        try check((0...1_000_000).contains(instance.weight), "weight", "must be between 0 and 1000000")
        try check(instance.checks.count <= limits.maxChecks, "checks", "at most \(limits.maxChecks) checks per instance")
        var seen = Set<String>()
        for (i, c) in instance.checks.enumerated() {
            try validateCheck(c, field: "checks[\(i)]")
            try check(seen.insert(c.checkID).inserted, "checks[\(i)].check_id", "'\(c.checkID)' is used twice")
        }
    }

    /// Service names become DNS labels (`NAME.service.roster`, `_NAME._tcp...`), so they are
    /// letters, digits and inner hyphens only.
    public func validateServiceName(_ name: String, field: String) throws(ValidationError) {
        try validateLabel(name, field: field, allowUnderscore: false)
    }

    /// Instance ids also allow `_`, which Consul users commonly put in IDs.
    public func validateInstanceID(_ id: String, field: String) throws(ValidationError) {
        try validateLabel(id, field: field, allowUnderscore: true)
    }

    func validateLabel(_ label: String, field: String, allowUnderscore: Bool) throws(ValidationError) {
        try check(!label.isEmpty, field, "is required")
        try check(label.utf8.count <= limits.maxLabelLength, field, "is longer than \(limits.maxLabelLength) characters")
        let allowedPunctuation: Set<UInt8> = allowUnderscore ? [UInt8(ascii: "-"), UInt8(ascii: "_")] : [UInt8(ascii: "-")]
        for byte in label.utf8 {
            let ok = (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
                || allowedPunctuation.contains(byte)
            try check(
                ok, field,
                "'\(label)' is not a DNS-safe label: use letters, digits and '-'\(allowUnderscore ? " or '_'" : "")")
        }
        let first = label.utf8.first!, last = label.utf8.last!
        try check(first != UInt8(ascii: "-") && last != UInt8(ascii: "-"), field, "'\(label)' must not start or end with '-'")
    }

    func validateCheck(_ c: HealthCheck, field: String) throws(ValidationError) {
        try check(!c.checkID.isEmpty && c.checkID.utf8.count <= 128, "\(field).check_id", "must be 1 to 128 bytes")
        try check(c.name.utf8.count <= 256, "\(field).name", "is longer than 256 bytes")
        try check(c.notes.utf8.count <= limits.maxNoteLength, "\(field).notes", "is longer than \(limits.maxNoteLength) bytes")
        switch c.kind {
        case .ttl:
            guard let ttl = c.ttl else { throw ValidationError(field: "\(field).ttl", message: "a TTL check needs a TTL such as \"10s\"") }
            try check(ttl >= limits.minCheckInterval, "\(field).ttl", "must be at least \(limits.minCheckInterval)")
        case .http, .tcp:
            guard let target = c.target, !target.isEmpty else {
                throw ValidationError(field: "\(field).target", message: "an \(c.kind.rawValue.uppercased()) check needs a target")
            }
            try check(target.utf8.count <= limits.maxCheckTargetLength, "\(field).target", "is longer than \(limits.maxCheckTargetLength) bytes")
            if c.kind == .http {
                try check(target.hasPrefix("http://") || target.hasPrefix("https://"), "\(field).target", "'\(target)' must be an http:// or https:// URL")
            }
            guard let interval = c.interval else {
                throw ValidationError(field: "\(field).interval", message: "an \(c.kind.rawValue.uppercased()) check needs an interval such as \"10s\"")
            }
            try check(interval >= limits.minCheckInterval, "\(field).interval", "must be at least \(limits.minCheckInterval)")
        }
        for (name, value) in [("success_before_passing", c.successBeforePassing), ("failures_before_critical", c.failuresBeforeCritical)] {
            try check((0...100).contains(value), "\(field).\(name)", "must be between 0 and 100")
        }
    }

    func validateList(_ items: [String], field: String, maxLength: Int) throws(ValidationError) {
        try check(items.count <= limits.maxListItems, field, "at most \(limits.maxListItems) items, got \(items.count)")
        for (i, item) in items.enumerated() {
            try check(!item.isEmpty, "\(field)[\(i)]", "must not be empty")
            try check(item.utf8.count <= maxLength, "\(field)[\(i)]", "is longer than \(maxLength) bytes")
        }
    }

    func validateMap(_ map: [String: String], field: String, maxValue: Int) throws(ValidationError) {
        try check(map.count <= limits.maxMetadataPairs, field, "at most \(limits.maxMetadataPairs) keys, got \(map.count)")
        for (key, value) in map {
            try check(!key.isEmpty, field, "keys must not be empty")
            try check(key.utf8.count <= limits.maxMetadataKeyLength, "\(field).\(key.prefix(32))", "key is longer than \(limits.maxMetadataKeyLength) bytes")
            try check(value.utf8.count <= maxValue, "\(field).\(key)", "value is \(value.utf8.count) bytes, at most \(maxValue) allowed")
        }
    }

    private func check(_ condition: Bool, _ field: String, _ message: @autoclosure () -> String) throws(ValidationError) {
        if !condition { throw ValidationError(field: field, message: message()) }
    }
}
