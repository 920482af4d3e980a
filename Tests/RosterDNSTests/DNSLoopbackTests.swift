import NIOCore
import Testing

@testable import RosterDNS

/// The real server on loopback sockets: over UDP and TCP, with `dig` and with NIO clients.
@Suite(.serialized) struct DNSLoopbackTests {
    static let data = InMemoryDataSource(
        instances: [
            instance("api-1", service: "api", host: "10.0.0.1", port: 8001, tags: ["primary"]),
            instance("api-2", service: "api", host: "10.0.0.2", port: 8002),
            instance("api-down", service: "api", host: "10.0.0.3", status: .unhealthy),
        ] + (0..<60).map { instance("big-\($0)", service: "big", host: "10.1.0.\($0 + 1)", port: 9000 + $0) },
        nodes: ["n1": "127.0.0.1"])

    // MARK: - dig

    @Test(.enabled(if: digInstalled, "needs /usr/bin/dig (Debian bind9-dnsutils)"))
    func digGetsAnswersOverUDPAndTCP() async throws {
        try await withDNSServer(Self.data) { port in
            let udp = try await dig(["api.service.roster.", "A"], port: port)
            #expect(udp.status == "NOERROR", "\(udp.raw)")
            #expect(udp.flags.isSuperset(of: ["qr", "aa"]))
            #expect(Set(udp.data("ANSWER", type: "A")) == ["10.0.0.1", "10.0.0.2"])
            #expect(udp.sections["ANSWER"]?.allSatisfy { $0[1] == "5" } == true, "TTL from the server")

            let tagged = try await dig(["+tcp", "primary.api.service.roster.", "A"], port: port)
            #expect(tagged.data("ANSWER", type: "A") == ["10.0.0.1"], "\(tagged.raw)")

            let srv = try await dig(["+tcp", "_api._tcp.service.roster.", "SRV"], port: port)
            #expect(
                Set(srv.data("ANSWER", type: "SRV")) == [
                    "1 1 8001 0a000001.addr.roster.", "1 1 8002 0a000002.addr.roster.",
                ], "\(srv.raw)")
            #expect(Set(srv.data("ADDITIONAL", type: "A")) == ["10.0.0.1", "10.0.0.2"])

            let node = try await dig(["n1.node.roster."], port: port)
            #expect(node.data("ANSWER", type: "A") == ["127.0.0.1"])
        }
    }

    @Test(.enabled(if: digInstalled, "needs /usr/bin/dig (Debian bind9-dnsutils)"))
    func digSeesNXDOMAINWithSOAAndREFUSED() async throws {
        try await withDNSServer(Self.data, ttl: 0) { port in
            let missing = try await dig(["nothing.service.roster.", "A"], port: port)
            #expect(missing.status == "NXDOMAIN", "\(missing.raw)")
            #expect(missing.data("AUTHORITY", type: "SOA") == ["ns.roster. hostmaster.roster. 1 0 0 0 0"])
            let outside = try await dig(["+tcp", "example.com.", "A"], port: port)
            #expect(outside.status == "REFUSED", "\(outside.raw)")
        }
    }

    @Test(.enabled(if: digInstalled, "needs /usr/bin/dig (Debian bind9-dnsutils)"))
    func digRetriesATruncatedAnswerOverTCP() async throws {
        try await withDNSServer(Self.data) { port in
            let truncated = try await dig(["+noedns", "+ignore", "big.service.roster.", "A"], port: port)
            #expect(truncated.flags.contains("tc"), "\(truncated.raw)")
            #expect((truncated.sections["ANSWER"]?.count ?? 0) < 60)

            let retried = try await dig(["+noedns", "big.service.roster.", "A"], port: port)
            #expect(retried.raw.contains("Truncated, retrying in TCP mode"), "\(retried.raw)")
            #expect(retried.data("ANSWER", type: "A").count == 60)

            let small = try await dig(["+bufsize=600", "+ignore", "big.service.roster.", "A"], port: port)
            #expect(small.flags.contains("tc"))
            let roomy = try await dig(["+bufsize=4096", "big.service.roster.", "A"], port: port)
            #expect(!roomy.flags.contains("tc"))
            #expect(roomy.data("ANSWER", type: "A").count == 60, "\(roomy.raw)")
        }
    }

    // MARK: - NIO clients

    @Test func nioUDPClientGetsAnswersAndGarbageDoesNotHurtOthers() async throws {
        try await withDNSServer(Self.data) { port in
            let garbage: [UInt8] = [0x0B, 0xAD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C]
            let requests =
                [[1, 2, 3], garbage] + (1...20).map { query("api.service.roster.", id: UInt16($0)).encoded() }
            let replies = try await udpExchange(requests, expecting: 21, port: port).map {
                try DNSMessage(decoding: $0)
            }
            let byID = Dictionary(replies.map { ($0.header.id, $0) }, uniquingKeysWith: { first, _ in first })
            #expect(byID[0x0BAD]?.header.responseCode == .formatError)
            for id in UInt16(1)...20 {
                let reply = try #require(byID[id], "reply \(id)")
                #expect(Set(reply.answers.compactMap(\.address)) == ["10.0.0.1", "10.0.0.2"])
            }
        }
    }

    @Test func nioUDPClientSeesTruncationAt512() async throws {
        try await withDNSServer(Self.data) { port in
            let reply = try await udpExchange([query("big.service.roster.").encoded()], expecting: 1, port: port)
            let bytes = try #require(reply.first)
            let message = try DNSMessage(decoding: bytes)
            #expect(bytes.count <= 512 && message.header.isTruncated)
        }
    }

    @Test func nioTCPClientGetsPipelinedAndSplitFramesAnswered() async throws {
        try await withDNSServer(Self.data) { port in
            let first = framed(query("big.service.roster.", id: 1).encoded())
            let second = framed(query("_api._primary.service.roster.", .srv, id: 2).encoded())
            // Both frames back to back, the second one cut in the middle of its length prefix.
            let joined = first + second
            let chunks = [Array(joined.prefix(first.count + 1)), Array(joined.dropFirst(first.count + 1))]
            let replies = try await tcpExchange(chunks, expecting: 2, port: port).map { try DNSMessage(decoding: $0) }
            let big = try #require(replies.first { $0.header.id == 1 })
            #expect(!big.header.isTruncated && big.answers.count == 60)
            let srv = try #require(replies.first { $0.header.id == 2 })
            #expect(srv.answers.count == 1 && srv.additionals.first?.address == "10.0.0.1")
        }
    }

    // MARK: - Framing

    @Test func tcpFrameDecoderWaitsForWholeFrames() throws {
        let message = query("api.service.roster.").encoded()
        let stream = framed(message) + framed(message)
        let processor = NIOSingleStepByteToMessageProcessor(DNSTCPFrameDecoder())
        var frames: [[UInt8]] = []
        for (index, byte) in stream.enumerated() {
            try processor.process(buffer: ByteBuffer(bytes: [byte])) { frames.append(Array($0.readableBytesView)) }
            let expected = index + 1 >= stream.count ? 2 : index + 1 >= stream.count / 2 ? 1 : 0
            #expect(frames.count == expected, "after \(index + 1) bytes")
        }
        #expect(frames == [message, message])
    }
}
