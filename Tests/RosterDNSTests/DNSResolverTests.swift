import RosterCore
import Testing

@testable import RosterDNS

@Suite struct DNSResolverTests {
    static let critical = HealthCheck(checkID: "c", name: "c", kind: .ttl, status: .critical)

    static let data = InMemoryDataSource(
        instances: [
            instance("web-1", host: "10.0.0.1", port: 8001, tags: ["primary"], weight: 10),
            instance("web-2", host: "10.0.0.2", port: 8002, tags: ["canary"]),
            instance("web-3", host: "fd00::3", port: 8003, tags: ["primary"]),
            instance("web-4", host: "10.0.0.1", port: 8004),  // shares web-1's host
            instance("web-down", host: "10.0.0.9", status: .unhealthy),
            instance("web-failing", host: "10.0.0.8", checks: [critical]),
            instance("web-named", host: "web.example.com", port: 8005),
            instance("db-1", service: "db", host: "10.0.1.1", status: .stopped),
        ],
        nodes: ["Node-A": "192.168.1.10", "node-b": "fd00::b"])

    let resolver = DNSResolver(dataSource: data, ttl: 30)

    func ask(_ name: String, _ type: DNSRecordType = .a, seed: UInt64 = 1) async throws -> DNSMessage {
        try await resolver.exchange(query(name, type), seed: seed).reply
    }

    // MARK: - Service lookups

    @Test func serviceAnswersHealthyIPv4InstancesOncePerAddress() async throws {
        let reply = try await ask("web.service.roster.")
        #expect(reply.header.isResponse && reply.header.isAuthoritative && reply.header.recursionDesired)
        #expect(reply.header.responseCode == .noError)
        #expect(Set(reply.answers.compactMap(\.address)) == ["10.0.0.1", "10.0.0.2"])
        #expect(reply.answers.count == 2)
        #expect(reply.answers.allSatisfy { $0.ttl == 30 && $0.name == name("web.service.roster.") })
    }

    @Test func aaaaAnswersIPv6InstancesAndAnyAnswersBoth() async throws {
        #expect(try await ask("web.service.roster.", .aaaa).answers.compactMap(\.address) == ["fd00::3"])
        #expect(
            Set(try await ask("web.service.roster.", .any).answers.compactMap(\.address)) == [
                "10.0.0.1", "10.0.0.2", "fd00::3",
            ])
    }

    @Test func namesMatchWhateverTheirCaseAndTheAnswerEchoesIt() async throws {
        let reply = try await ask("WEB.Service.ROSTER")
        #expect(reply.answers.count == 2)
        #expect(reply.questions.first?.name.description == "WEB.Service.ROSTER.")
        #expect(reply.answers.first?.name.description == "WEB.Service.ROSTER.")
    }

    @Test func orderIsRandomButDrivenByTheInjectedGenerator() async throws {
        var orders: Set<[String]> = []
        for seed in 1...40 {
            orders.insert(try await ask("web.service.roster.", seed: UInt64(seed)).answers.compactMap(\.address))
        }
        #expect(orders.count == 2)
        let once = try await ask("web.service.roster.", .srv, seed: 7)
        #expect(try await ask("web.service.roster.", .srv, seed: 7) == once)
    }

    @Test func tagNarrowsTheAnswer() async throws {
        #expect(try await ask("primary.web.service.roster.").answers.compactMap(\.address) == ["10.0.0.1"])
        #expect(try await ask("CANARY.web.service.roster.").answers.compactMap(\.address) == ["10.0.0.2"])
        let none = try await ask("missing.web.service.roster.")
        #expect(none.header.responseCode == .nameError)
    }

    @Test func unhealthyInstancesAreNeverAnswered() async throws {
        let reply = try await ask("web.service.roster.", .any)
        #expect(!reply.answers.compactMap(\.address).contains("10.0.0.9"))
        #expect(!reply.answers.compactMap(\.address).contains("10.0.0.8"))
        let stopped = try await ask("db.service.roster.")
        #expect(stopped.header.responseCode == .nameError)
        #expect(stopped.answers.isEmpty)
    }

    // MARK: - SRV

    @Test func srvAnswersEveryInstanceWithAddressesInTheAdditionalSection() async throws {
        let reply = try await ask("_web._tcp.service.roster.", .srv)
        var ports: [UInt16: DNSName] = [:]
        for record in reply.answers {
            guard case .srv(let priority, let weight, let port, let target) = record.data else {
                Issue.record("not an SRV record: \(record)")
                continue
            }
            #expect(priority == 1)
            #expect(weight == (port == 8001 ? 10 : 1))
            ports[port] = target
        }
        #expect(ports[8001] == name("0a000001.addr.roster."))
        #expect(ports[8004] == name("0a000001.addr.roster."))
        #expect(ports[8003] == name("fd000000000000000000000000000003.addr.roster."))
        #expect(ports[8005] == name("web.example.com."))
        #expect(ports.count == 5)
        // One A/AAAA per distinct address target; none for the host name, which is not ours.
        #expect(
            Set(reply.additionals.map { "\($0.name) \($0.address ?? "")" }) == [
                "0a000001.addr.roster. 10.0.0.1", "0a000002.addr.roster. 10.0.0.2",
                "fd000000000000000000000000000003.addr.roster. fd00::3",
            ])
    }

    @Test func srvTagFormsFilterAndTcpMeansAll() async throws {
        let tagged = try await ask("_web._primary.service.roster.", .srv)
        #expect(tagged.answers.count == 2)
        let plain = try await ask("primary.web.service.roster.", .srv)
        #expect(plain.answers.count == 2)
        let all = try await ask("_WEB._TCP.service.roster.", .srv)
        #expect(all.answers.count == 5)
    }

    @Test func srvTargetsResolve() async throws {
        #expect(try await ask("0a000002.addr.roster.").answers.compactMap(\.address) == ["10.0.0.2"])
        let v6 = try await ask("fd000000000000000000000000000003.addr.roster.", .aaaa)
        #expect(v6.answers.compactMap(\.address) == ["fd00::3"])
        #expect(try await ask("zz.addr.roster.").header.responseCode == .nameError)
    }

    // MARK: - Nodes

    @Test func nodeAnswersItsAddress() async throws {
        #expect(try await ask("node-a.node.roster.").answers.compactMap(\.address) == ["192.168.1.10"])
        #expect(try await ask("NODE-B.node.roster.", .aaaa).answers.compactMap(\.address) == ["fd00::b"])
        let wrongType = try await ask("node-b.node.roster.", .a)
        #expect(wrongType.header.responseCode == .noError)
        #expect(wrongType.answers.isEmpty && wrongType.authorities.count == 1)
        #expect(try await ask("nobody.node.roster.").header.responseCode == .nameError)
    }

    // MARK: - Negative answers

    @Test func unknownNamesGetNXDOMAINWithTheSOA() async throws {
        for unknown in ["nothing.service.roster.", "a.b.c.service.roster.", "what.roster.", "x.y.node.roster."] {
            let reply = try await ask(unknown)
            #expect(reply.header.responseCode == .nameError, "\(unknown)")
            #expect(reply.answers.isEmpty)
            let soa = try #require(reply.authorities.first)
            #expect(soa.name == name("roster."))
            guard case .soa(let data) = soa.data else {
                Issue.record("authority is not an SOA: \(soa)")
                continue
            }
            #expect(data.primaryServer == name("ns.roster."))
            #expect(data.responsibleMailbox == name("hostmaster.roster."))
            #expect([data.refresh, data.retry, data.expire, data.minimum, soa.ttl] == [30, 30, 30, 30, 30])
        }
    }

    @Test func knownNameWithoutThatTypeIsNoDataWithTheSOA() async throws {
        let reply = try await ask("web.service.roster.", .txt)
        #expect(reply.header.responseCode == .noError)
        #expect(reply.answers.isEmpty)
        #expect(reply.authorities.first?.type == .soa)
    }

    @Test func apexAnswersItsSOA() async throws {
        let reply = try await ask("roster.", .soa)
        #expect(reply.answers.first?.type == .soa)
    }

    @Test func namesOutsideTheDomainAreRefused() async throws {
        let reply = try await ask("www.example.com.")
        #expect(reply.header.responseCode == .refused)
        #expect(!reply.header.isAuthoritative)
        #expect(reply.answers.isEmpty && reply.authorities.isEmpty)
    }

    @Test func anotherDomainCanBeServed() async throws {
        let consul = DNSResolver(dataSource: Self.data, domain: name("Consul.Example."))
        let reply = try await consul.exchange(query("web.service.consul.example", .a)).reply
        #expect(reply.answers.count == 2)
        #expect(try await consul.exchange(query("web.service.roster.")).reply.header.responseCode == .refused)
    }

    // MARK: - Malformed requests

    @Test func unanswerableRequestsGetTheRightCode() async throws {
        var notQuery = query("web.service.roster.")
        notQuery.header.opcode = 2
        #expect(try await resolver.exchange(notQuery).reply.header.responseCode == .notImplemented)

        var twoQuestions = query("web.service.roster.")
        twoQuestions.questions += twoQuestions.questions
        #expect(try await resolver.exchange(twoQuestions).reply.header.responseCode == .formatError)

        var futureEDNS = query("web.service.roster.", edns: 1232)
        futureEDNS.edns?.version = 1
        let badVersion = try await resolver.exchange(futureEDNS).reply
        #expect(badVersion.header.responseCode == .badVersion)
        #expect(badVersion.edns != nil)

        var rng = SeededGenerator(seed: 1)
        let garbage: [UInt8] = [0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0]
        let formErr = try DNSMessage(
            decoding: try #require(await resolver.respond(to: garbage, over: .udp, using: &rng)))
        #expect(formErr.header.id == 0xABCD && formErr.header.responseCode == .formatError)

        var response = query("web.service.roster.")
        response.header.isResponse = true
        #expect(await resolver.respond(to: response.encoded(), over: .udp, using: &rng) == nil)
        #expect(await resolver.respond(to: [1, 2, 3], over: .udp, using: &rng) == nil)
    }
}
