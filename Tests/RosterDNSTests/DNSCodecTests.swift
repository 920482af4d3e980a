import Testing

@testable import RosterDNS

@Suite struct DNSCodecTests {
    // MARK: - Round trips

    @Test func queryWithEDNSRoundTrips() throws {
        var message = query("Web.Service.roster.", .srv, id: 0xBEEF, edns: 1232)
        message.edns?.dnssecOK = true
        message.edns?.options = [0, 10, 0, 2, 0xAB, 0xCD]
        let decoded = try DNSMessage(decoding: message.encoded())
        #expect(decoded == message)
        #expect(decoded.questions.first?.name.description == "Web.Service.roster.")
    }

    @Test func responseWithEveryWrittenTypeRoundTrips() throws {
        var header = DNSHeader(id: 7)
        header.isResponse = true
        header.isAuthoritative = true
        header.recursionDesired = true
        header.responseCode = .nameError
        var message = DNSMessage(header: header)
        message.questions = [DNSQuestion(name: name("_web._tcp.service.roster."), type: .srv)]
        let target = name("0a000001.addr.roster.")
        message.answers = [
            DNSResourceRecord(
                name: name("_web._tcp.service.roster."), ttl: 30,
                data: .srv(priority: 1, weight: 5, port: 8080, target: target)),
            DNSResourceRecord(name: name("alias.roster."), ttl: 0, data: .cname(name("web.service.roster."))),
        ]
        message.authorities = [
            DNSResourceRecord(
                name: name("roster."), ttl: 0,
                data: .soa(
                    DNSStartOfAuthority(
                        primaryServer: name("ns.roster."), responsibleMailbox: name("hostmaster.roster."), serial: 9,
                        refresh: 1, retry: 2, expire: 3, minimum: 4)))
        ]
        message.additionals = [
            DNSResourceRecord(name: target, ttl: 30, data: .address(.v4([10, 0, 0, 1]))),
            DNSResourceRecord(
                name: name("v6.addr.roster."), ttl: 30, data: .address(try #require(IPAddress("fd00::1")))),
        ]
        message.edns = DNSEDNS(udpPayloadSize: 4096)
        let decoded = try DNSMessage(decoding: message.encoded())
        #expect(decoded == message)
    }

    @Test func extendedResponseCodeTravelsInTheOPTRecord() throws {
        var message = query("x.roster.", edns: 512)
        message.header.isResponse = true
        message.header.responseCode = .badVersion
        let bytes = message.encoded()
        #expect(bytes[3] & 0x0F == 0)  // BADVERS is 16: nothing in the header's 4 bits
        #expect(try DNSMessage(decoding: bytes).header.responseCode == .badVersion)
    }

    // MARK: - Compression

    @Test func answerOwnerPointsBackToTheQuestion() throws {
        var message = query("web.service.roster.")
        message.header.isResponse = true
        message.answers = [
            DNSResourceRecord(name: name("WEB.service.roster."), ttl: 0, data: .address(.v4([1, 2, 3, 4])))
        ]
        let bytes = message.encoded()
        let answerStart = 12 + name("web.service.roster.").wireLength + 4
        #expect(Array(bytes[answerStart..<answerStart + 2]) == [0xC0, 0x0C])
        #expect(bytes.count == answerStart + 2 + 10 + 4)
    }

    @Test func srvTargetIsWrittenInFullButLaterNamesPointIntoIt() throws {
        var message = query("_web._tcp.service.roster.", .srv)
        let target = name("0a000001.addr.roster.")
        message.answers = [
            DNSResourceRecord(
                name: name("_web._tcp.service.roster."), ttl: 0,
                data: .srv(priority: 1, weight: 1, port: 80, target: target))
        ]
        message.additionals = [DNSResourceRecord(name: target, ttl: 0, data: .address(.v4([10, 0, 0, 1])))]
        let bytes = message.encoded()
        let questionEnd = 12 + name("_web._tcp.service.roster.").wireLength + 4
        let targetAt = questionEnd + 2 + 10 + 6
        // RFC 2782 forbids compressing the target, so it is written out although `roster.` came before.
        #expect(bytes[targetAt] == 8)
        #expect(Array(bytes[targetAt + 1..<targetAt + 9]) == Array("0a000001".utf8))
        let additionalAt = targetAt + target.wireLength
        #expect(Array(bytes[additionalAt..<additionalAt + 2]) == [0xC0 | UInt8(targetAt >> 8), UInt8(targetAt & 0xFF)])
        #expect(try DNSMessage(decoding: bytes).additionals == message.additionals)
    }

    // MARK: - Rejections

    @Test func shortHeaderThrows() {
        #expect(throws: DNSWireError.self) { try DNSMessage.decodeHeader([0x12, 0x34, 0x01]) }
        #expect(throws: DNSWireError.self) { try DNSMessage(decoding: []) }
    }

    @Test func pointerLoopsAreRejected() {
        let header: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        // A pointer to itself.
        #expect(throws: DNSWireError.badCompressionPointer(offset: 12)) {
            try DNSMessage(decoding: header + [0xC0, 12, 0, 1, 0, 1])
        }
        // A label, then a pointer back to that label: a loop through one label.
        #expect(throws: DNSWireError.badCompressionPointer(offset: 14)) {
            try DNSMessage(decoding: header + [1, 0x61, 0xC0, 12, 0, 1, 0, 1])
        }
        // A forward pointer.
        #expect(throws: DNSWireError.badCompressionPointer(offset: 12)) {
            try DNSMessage(decoding: header + [0xC0, 14, 0, 0, 1, 0, 1])
        }
    }

    @Test func reservedLabelTypesAndOverlongNamesAreRejected() {
        let header: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        #expect(throws: DNSWireError.unsupportedLabelType(offset: 12)) {
            try DNSMessage(decoding: header + [0x41] + Array(repeating: 0x61, count: 65) + [0, 0, 1, 0, 1])
        }
        let longName: [UInt8] = (0..<5).flatMap { _ in [UInt8(63)] + Array(repeating: UInt8(0x61), count: 63) }
        #expect(throws: DNSWireError.nameTooLong) { try DNSMessage(decoding: header + longName + [0, 0, 1, 0, 1]) }
        #expect(throws: DNSWireError.labelTooLong(length: 64)) {
            try DNSName(String(repeating: "a", count: 64) + ".roster.")
        }
        #expect(throws: DNSWireError.emptyLabel) { try DNSName("a..roster.") }
    }

    @Test func recordDataMustMatchItsLength() throws {
        var message = query("web.service.roster.")
        message.answers = [
            DNSResourceRecord(name: name("web.service.roster."), ttl: 0, data: .address(.v4([1, 2, 3, 4])))
        ]
        var bytes = message.encoded()
        bytes[bytes.count - 5] = 5  // RDLENGTH 4 → 5, one byte past the end
        #expect(throws: DNSWireError.self) { try DNSMessage(decoding: bytes) }
        bytes[bytes.count - 5] = 3  // an A record of 3 bytes
        #expect(throws: DNSWireError.badRecordData(type: 1)) { try DNSMessage(decoding: Array(bytes.dropLast())) }
    }

    @Test func twoOPTRecordsAreAFormatError() {
        var bytes = query("web.service.roster.", edns: 1232).encoded()
        bytes += Array(bytes.suffix(11))
        bytes[11] = 2
        #expect(throws: DNSWireError.badOPTRecord) { try DNSMessage(decoding: bytes) }
    }

    // MARK: - Names and addresses

    @Test func namesMatchIgnoringCaseButKeepTheirCase() throws {
        let asked = name("WeB.SERVICE.Roster")
        #expect(asked.hasSuffix(name("roster.")))
        #expect(asked.lowercasedLabels == ["web", "service", "roster"])
        #expect(asked.description == "WeB.SERVICE.Roster.")
        #expect(try DNSName(labels: [Array("a.b".utf8), [0x07]]).description == "a\\.b.\\007.")
        #expect(DNSName.root.description == ".")
    }

    @Test func addressesParseAndPrint() throws {
        #expect(IPAddress("10.0.0.1") == .v4([10, 0, 0, 1]))
        #expect(IPAddress("010.0.0.1") == nil)
        #expect(IPAddress("256.0.0.1") == nil)
        #expect(IPAddress("web.example.com") == nil)
        #expect(IPAddress("::1")?.description == "::1")
        #expect(IPAddress("2001:db8:0:0:1:0:0:1")?.description == "2001:db8::1:0:0:1")
        #expect(IPAddress("::ffff:192.0.2.1")?.bytes.suffix(4) == [192, 0, 2, 1])
        #expect(IPAddress("1:::2") == nil)
        #expect(IPAddress("1:2:3:4:5:6:7:8:9") == nil)
        #expect(IPAddress("fe80::1%eth0") == nil)
        let v6 = try #require(IPAddress("fd00::abcd"))
        #expect(IPAddress(hexLabel: v6.hexLabel) == v6)
        #expect(IPAddress(hexLabel: "0A000001") == .v4([10, 0, 0, 1]))
        #expect(IPAddress(hexLabel: "0a00000g") == nil)
    }
}
