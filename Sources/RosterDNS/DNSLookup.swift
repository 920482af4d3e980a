/// What a question's name asks for, decided from the name alone (SPEC §3).
///
/// Matching ignores ASCII case, and the service, tag and node names it yields are lower case.
public enum DNSLookup: Hashable, Sendable {
    /// The name is not under the served domain: REFUSED, since this server is authoritative
    /// for its domain only and does not recurse.
    case outsideDomain
    /// The domain itself, which owns the SOA record.
    case apex
    /// `NAME.service`, `TAG.NAME.service`, `_NAME._tcp.service` or `_NAME._TAG.service`.
    case service(name: String, tag: String?)
    /// `NODE.node`.
    case node(String)
    /// `HEX.addr`: the targets of SRV answers, which carry the address in the name itself
    /// (8 hex digits for IPv4, 32 for IPv6, as Consul writes them), so they resolve without
    /// any state and cannot go stale between the SRV answer and the follow-up query.
    case address(IPAddress)
    /// Under the domain but of no known form: NXDOMAIN.
    case unknown

    public init(name: DNSName, domain: DNSName) {
        guard let front = name.labels(before: domain) else {
            self = .outsideDomain
            return
        }
        let parts = front.map { String(decoding: DNSName.lowercased($0), as: UTF8.self) }
        guard let kind = parts.last else {
            self = .apex
            return
        }
        switch (kind, parts.count) {
        case ("service", 2):
            self = .service(name: parts[0], tag: nil)
        case ("service", 3) where parts[0].hasPrefix("_") && parts[1].hasPrefix("_"):
            // RFC 2782 form. Consul reads the second label as a tag, with `_tcp` meaning none.
            let name = String(parts[0].dropFirst())
            let tag = String(parts[1].dropFirst())
            self = name.isEmpty || tag.isEmpty ? .unknown : .service(name: name, tag: tag == "tcp" ? nil : tag)
        case ("service", 3):
            self = .service(name: parts[1], tag: parts[0])
        case ("node", 2):
            self = .node(parts[0])
        case ("addr", 2):
            self = IPAddress(hexLabel: parts[0]).map { .address($0) } ?? .unknown
        default:
            self = .unknown
        }
    }
}
