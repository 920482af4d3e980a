import Testing

@testable import RosterDNS

@Suite struct DNSTruncationTests {
    /// 60 healthy instances, each on its own address.
    static let many = DNSResolver(
        dataSource: InMemoryDataSource(
            instances: (0..<60).map { instance("web-\($0)", host: "10.0.\($0 / 250).\($0 % 250 + 1)", port: 9000 + $0) }
        ))
    /// Bytes one more A record takes: a pointer owner, type, class, TTL, length, 4 bytes.
    static let aRecordSize = 16

    @Test func udpWithoutEDNSIsCutAt512BytesOnARecordBoundaryWithTC() async throws {
        let (reply, size) = try await Self.many.exchange(query("web.service.roster."))
        #expect(reply.header.isTruncated)
        #expect(size <= 512)
        #expect(size + Self.aRecordSize > 512, "as many records as fit: \(reply.answers.count)")
        #expect(reply.answers.count > 0 && reply.answers.count < 60)
        #expect(reply.answers.allSatisfy { $0.address != nil })
        #expect(reply.authorities.isEmpty && reply.additionals.isEmpty)
    }

    @Test func tcpCarriesTheFullAnswer() async throws {
        let (reply, size) = try await Self.many.exchange(query("web.service.roster."), over: .tcp)
        #expect(!reply.header.isTruncated)
        #expect(reply.answers.count == 60)
        #expect(size > 512)
        let srv = try await Self.many.exchange(query("_web._tcp.service.roster.", .srv), over: .tcp).reply
        #expect(!srv.header.isTruncated)
        #expect(srv.answers.count == 60 && srv.additionals.count == 60)
    }

    @Test func ednsSizeIsHonoured() async throws {
        let large = try await Self.many.exchange(query("web.service.roster.", edns: 4096))
        #expect(!large.reply.header.isTruncated)
        #expect(large.reply.answers.count == 60)
        #expect(large.reply.edns?.udpPayloadSize == DNSResolver.maxUDPPayload)

        let medium = try await Self.many.exchange(query("web.service.roster.", edns: 700))
        #expect(medium.reply.header.isTruncated)
        #expect(medium.size <= 700 && medium.size + Self.aRecordSize > 700)
        #expect(medium.reply.edns != nil, "the OPT record is kept even when records are dropped")

        let tiny = try await Self.many.exchange(query("web.service.roster.", edns: 100))
        #expect(tiny.reply.header.isTruncated)
        #expect(tiny.size <= 512 && tiny.size + Self.aRecordSize > 512, "below 512 means 512")
    }

    @Test func udpLimitIsCappedAtWhatTheServerOffers() {
        #expect(DNSResolver.sizeLimit(for: query("x.roster.", edns: 65_000), over: .udp) == 4096)
        #expect(DNSResolver.sizeLimit(for: query("x.roster."), over: .udp) == 512)
        #expect(DNSResolver.sizeLimit(for: query("x.roster.", edns: 100), over: .tcp) == 65_535)
    }

    @Test func srvOverUDPIsTruncatedWithoutAdditionals() async throws {
        let (reply, size) = try await Self.many.exchange(query("_web._tcp.service.roster.", .srv))
        #expect(reply.header.isTruncated)
        #expect(size <= 512)
        #expect(reply.answers.count < 60 && reply.additionals.isEmpty)
    }

    /// RFC 2181 §9: extra records that do not fit are left out without TC, since the answer
    /// itself is complete.
    @Test func additionalsThatDoNotFitAreDroppedWithoutTC() async throws {
        let ten = DNSResolver(
            dataSource: InMemoryDataSource(instances: (0..<10).map { instance("web-\($0)", host: "10.0.0.\($0 + 1)") }))
        let (reply, size) = try await ten.exchange(query("_web._tcp.service.roster.", .srv))
        #expect(!reply.header.isTruncated)
        #expect(reply.answers.count == 10)
        #expect(reply.additionals.count > 0 && reply.additionals.count < 10)
        #expect(size <= 512)
        let targets = Set(
            reply.answers.compactMap { record -> DNSName? in
                if case .srv(_, _, _, let target) = record.data { return target }
                return nil
            })
        #expect(reply.additionals.allSatisfy { targets.contains($0.name) })
    }
}
