import RosterCore

/// Which transport a query came over: it decides how large the answer may be.
public enum DNSTransport: Sendable {
    case udp
    case tcp
}

/// Answers DNS queries from a `DNSDataSource`: the pure core of the DNS interface.
///
/// It owns no sockets and no clock, and takes its randomness as an argument, so that tests can
/// check every answer exactly. Answers, per SPEC §3:
/// - `NAME.service` / `TAG.NAME.service`: A and AAAA records of the healthy instances, in random
///   order, one record per distinct address. An instance whose host is a DNS name rather than
///   an IP address is left out of A/AAAA answers (several CNAMEs for one name are not allowed,
///   and a single one would hide the other instances); it does appear in SRV answers, with its
///   host name as the target.
/// - `_NAME._tcp.service` / `_NAME._TAG.service` (or an SRV question on the plain form): one SRV
///   record per instance, target `HEX.addr.DOMAIN`, and those targets' A/AAAA records in the
///   additional section.
/// - `NODE.node`: the node's address. `HEX.addr`: the address in the name.
/// - Nothing healthy, or an unknown name: NXDOMAIN with the SOA in the authority section. A
///   known name without records of the asked type: NOERROR, no answer, the SOA (RFC 2308 NODATA).
/// - A name outside the domain: REFUSED.
public struct DNSResolver: Sendable {
    /// The largest UDP response offered to EDNS0 clients. Larger datagrams fragment, and lost
    /// fragments lose the whole answer; past this the client should use TCP.
    public static let maxUDPPayload: UInt16 = 4096

    public let dataSource: any DNSDataSource
    public let domain: DNSName
    public let ttl: UInt32
    /// The SOA of the domain. Its timers all equal the TTL: there are no secondary servers to
    /// refresh, and `minimum` is the negative-caching TTL, which should match positive answers.
    public let soa: DNSStartOfAuthority

    public init(dataSource: any DNSDataSource, domain: DNSName = .defaultDomain, ttl: UInt32 = 0) {
        self.dataSource = dataSource
        self.domain = domain
        self.ttl = ttl
        func under(_ label: String) -> DNSName {
            (try? DNSName(labels: [Array(label.utf8)] + domain.labels)) ?? domain
        }
        soa = DNSStartOfAuthority(
            primaryServer: under("ns"), responsibleMailbox: under("hostmaster"), serial: 1,
            refresh: ttl, retry: ttl, expire: ttl, minimum: ttl)
    }

    // MARK: - Wire

    /// Reads a request, answers it and writes the reply within the transport's size limit.
    ///
    /// Returns nil for what must not be answered: packets too short to carry an id, and
    /// responses (answering those could start a loop between two servers). A body that does
    /// not parse gets FORMERR.
    public func respond<R: RandomNumberGenerator>(
        to request: [UInt8], over transport: DNSTransport, using rng: inout R
    ) async -> [UInt8]? {
        guard let header = try? DNSMessage.decodeHeader(request), !header.isResponse else { return nil }
        let query: DNSMessage
        do {
            query = try DNSMessage(decoding: request)
        } catch {
            return reply(to: header, code: .formatError).encoded(maxSize: DNSMessage.classicUDPSize)
        }
        let response = await response(to: query, using: &rng)
        return response.encoded(maxSize: Self.sizeLimit(for: query, over: transport))
    }

    /// TCP takes anything a frame can carry; UDP takes 512 bytes, or what the client announced
    /// in EDNS0 (never below 512, never above `maxUDPPayload`).
    public static func sizeLimit(for query: DNSMessage, over transport: DNSTransport) -> Int {
        switch transport {
        case .tcp: DNSMessage.maxTCPSize
        case .udp:
            query.edns.map { min(max(Int($0.udpPayloadSize), DNSMessage.classicUDPSize), Int(maxUDPPayload)) }
                ?? DNSMessage.classicUDPSize
        }
    }

    // MARK: - Messages

    /// The full, untruncated response to a parsed query.
    public func response<R: RandomNumberGenerator>(to query: DNSMessage, using rng: inout R) async -> DNSMessage {
        var response = reply(to: query.header, code: .noError)
        response.questions = query.questions
        if query.edns != nil { response.edns = DNSEDNS(udpPayloadSize: Self.maxUDPPayload) }
        guard query.header.opcode == 0 else { return with(response, code: .notImplemented) }
        guard (query.edns?.version ?? 0) == 0 else { return with(response, code: .badVersion) }
        guard query.questions.count == 1, let question = query.questions.first else {
            return with(response, code: .formatError)
        }
        guard question.recordClass == dnsClassInternet || question.recordClass == 255 else {
            return with(response, code: .refused, authoritative: false)
        }

        let found: Found
        switch DNSLookup(name: question.name, domain: domain) {
        case .outsideDomain:
            return with(response, code: .refused, authoritative: false)
        case .unknown:
            found = .nothing
        case .apex:
            let wanted = question.type == .soa || question.type == .any
            found = .records(wanted ? [DNSResourceRecord(name: question.name, ttl: ttl, data: .soa(soa))] : [], [])
        case .address(let address):
            found = .records(addressRecords([address], owner: question.name, type: question.type), [])
        case .node(let name):
            guard let text = await dataSource.nodeAddress(name) else {
                found = .nothing
                break
            }
            let address = IPAddress(text).map { [$0] } ?? []
            found = .records(addressRecords(address, owner: question.name, type: question.type), [])
        case .service(let name, let tag):
            let instances = await dataSource.healthyInstances(service: name, tag: tag).filter { instance in
                instance.isHealthy && (tag.map { tag in instance.tags.contains { $0.lowercased() == tag } } ?? true)
            }
            found = instances.isEmpty ? .nothing : serviceRecords(instances.shuffled(using: &rng), question: question)
        }

        switch found {
        case .nothing:
            response.header.responseCode = .nameError
            response.authorities = [soaRecord]
        case .records(let answers, let additionals):
            response.answers = answers
            response.additionals = additionals
            if answers.isEmpty { response.authorities = [soaRecord] }
        }
        return response
    }

    private enum Found {
        case nothing
        case records([DNSResourceRecord], [DNSResourceRecord])
    }

    private var soaRecord: DNSResourceRecord { DNSResourceRecord(name: domain, ttl: ttl, data: .soa(soa)) }

    private func reply(to header: DNSHeader, code: DNSResponseCode) -> DNSMessage {
        var reply = DNSHeader(id: header.id)
        reply.isResponse = true
        reply.opcode = header.opcode
        reply.isAuthoritative = true
        reply.recursionDesired = header.recursionDesired
        reply.responseCode = code
        return DNSMessage(header: reply)
    }

    private func with(_ message: DNSMessage, code: DNSResponseCode, authoritative: Bool = true) -> DNSMessage {
        var message = message
        message.header.responseCode = code
        message.header.isAuthoritative = authoritative
        return message
    }

    // MARK: - Records

    /// A and/or AAAA records for `addresses`, as the question's type asks, without duplicates:
    /// an RRset holds each record once (RFC 2181 §5), even if two instances share a host.
    private func addressRecords(_ addresses: [IPAddress], owner: DNSName, type: DNSRecordType) -> [DNSResourceRecord] {
        var seen: Set<IPAddress> = []
        return addresses.compactMap { address in
            let matches: Bool =
                switch address {
                case .v4: type == .a || type == .any
                case .v6: type == .aaaa || type == .any
                }
            guard matches, seen.insert(address).inserted else { return nil }
            return DNSResourceRecord(name: owner, ttl: ttl, data: .address(address))
        }
    }

    private func serviceRecords(_ instances: [ServiceInstance], question: DNSQuestion) -> Found {
        guard question.type == .srv else {
            return .records(
                addressRecords(instances.compactMap { IPAddress($0.host) }, owner: question.name, type: question.type),
                [])
        }
        var answers: [DNSResourceRecord] = []
        var additionals: [DNSResourceRecord] = []
        var targets: Set<DNSName> = []
        for instance in instances {
            let target: DNSName
            if let address = IPAddress(instance.host) {
                guard
                    let name = try? DNSName(labels: [Array(address.hexLabel.utf8), Array("addr".utf8)] + domain.labels)
                else {
                    continue
                }
                target = name
                if targets.insert(name).inserted {
                    additionals.append(DNSResourceRecord(name: name, ttl: ttl, data: .address(address)))
                }
            } else if let name = try? DNSName(instance.host), !name.labels.isEmpty {
                target = name
            } else {
                continue
            }
            let record = DNSRecordData.srv(
                priority: 1, weight: UInt16(clamping: instance.weight), port: UInt16(clamping: instance.port),
                target: target)
            answers.append(DNSResourceRecord(name: question.name, ttl: ttl, data: record))
        }
        return .records(answers, additionals)
    }
}

extension DNSName {
    /// `roster.`, SPEC's default `--domain`.
    public static let defaultDomain = DNSName(validatedLabels: [Array("roster".utf8)])
}
