import NIOCore
import RosterNode
import RosterWire
import Testing

/// The peer transport over real loopback TCP: who gets to exchange payloads. Plaintext peers,
/// mutual TLS from one CA, and the handshake refusals (another CA, plaintext against TLS, a
/// certificate naming another node, another cluster, a node dialling itself).
/// Every wait is for a condition with a deadline: delegate events wake the waiting test directly;
/// nothing sleeps to let time pass. The peers under test are in PeerTransportTestSupport.swift.
@Suite struct PeerTransportExchangeTests {
    // MARK: - Plaintext exchange

    @Test func plaintextPeersExchangePayloadsBothWaysAttributedToTheirHandshake() async throws {
        let a = try await PeerNode.start(name: "a")
        let b = try await PeerNode.start(name: "b")
        defer { a.stopLater(); b.stopLater() }

        a.transport.send(bytes("hello b"), to: b.address)
        b.transport.send(bytes("hello a"), to: a.address)

        try await b.events.require("b receives from a") { $0.payloads(from: "a") == ["hello b"] }
        try await a.events.require("a receives from b") { $0.payloads(from: "b") == ["hello a"] }
        // Each side dialled the other, so each also saw one inbound and one outbound connection.
        try await a.events.require("a connected to b's listener") { $0.connected.contains { $0.address == b.address } }
        #expect(a.transport.localHandshake.advertise == a.address)
        #expect(a.events.snapshot.refused.isEmpty && b.events.snapshot.refused.isEmpty)
    }

    @Test func thousandMessagesArriveInOrderAndALargePayloadArrivesIntactCompressed() async throws {
        let a = try await PeerNode.start(name: "a")
        let b = try await PeerNode.start(name: "b")
        defer { a.stopLater(); b.stopLater() }

        for sequence in 0..<1000 {
            var payload = ByteBuffer()
            payload.writeInteger(UInt64(sequence))
            a.transport.send(payload, to: b.address)
        }
        // 1 MiB of text: compressible, so it travels LZ4-compressed above the threshold.
        let line = Array("roster gossip payload line that repeats and therefore compresses well\n".utf8)
        var large = ByteBuffer()
        while large.readableBytes < 1 << 20 { large.writeBytes(line) }
        a.transport.send(large, to: b.address)

        try await b.events.require("all 1001 payloads arrive", timeout: .seconds(30)) { $0.received.count == 1001 }
        let received = b.events.snapshot.received
        let sequences = received.prefix(1000).map { $0.payload.getInteger(at: $0.payload.readerIndex, as: UInt64.self) }
        #expect(sequences == (0..<1000).map { UInt64($0) })
        #expect(received.last?.payload == large)
        #expect(received.allSatisfy { $0.from.nodeName == "a" })

        let sent = a.transport.statistics
        #expect(sent.payloadBytesSent > 1 << 20)
        #expect(sent.wireBytesSent < sent.payloadBytesSent / 4, "the 1 MiB text payload should compress: \(sent)")
        #expect(b.transport.statistics.payloadBytesReceived == sent.payloadBytesSent)
    }

    // MARK: - Mutual TLS

    @Test func mutualTLSFromOneCAWorksAndPeersFromAnotherCAOrPlaintextAreRefused() async throws {
        let pki = try PeerPKI(cluster: ["server", "good"], other: ["rogue"])
        let server = try await PeerNode.start(name: "server", security: .mutualTLS(pki.tls("server")))
        let good = try await PeerNode.start(name: "good", security: .mutualTLS(pki.tls("good")))
        let rogue = try await PeerNode.start(name: "rogue", security: .mutualTLS(pki.tls("rogue", ca: .other)))
        defer { server.stopLater(); good.stopLater(); rogue.stopLater() }

        rogue.transport.send(bytes("inject from rogue"), to: server.address)
        try await server.events.require("server refuses the rogue's TLS") { $0.refused.count >= 1 }
        try await rogue.events.require("the rogue is refused too") { !$0.refused.isEmpty }
        #expect(
            server.events.snapshot.refused.allSatisfy { $0.reason.contains("TLS") }, "\(server.events.snapshot.refused)"
        )

        // A plaintext client, speaking Roster's own handshake but no TLS, is refused too.
        let raw = try await RawClient.connect(port: server.port)
        var handshake = ByteBuffer()
        let claimed = Handshake(clusterID: "test", nodeName: "plain", generation: 1, advertise: "plain:1")
        try Frame(payload: try claimed.encoded()).encode(limits: .default, into: &handshake)
        try await raw.write(Array(handshake.readableBytesView))
        #expect(await raw.closedByServer())
        try await server.events.require("server refuses the plaintext peer") {
            $0.refused.contains { $0.address == raw.localAddress && $0.reason.contains("TLS") }
        }

        good.transport.send(bytes("hello from good"), to: server.address)
        try await server.events.require("the good peer still gets through") {
            $0.payloads(from: "good") == ["hello from good"]
        }
        // Nothing from the refused peers was ever delivered or accepted.
        let events = server.events.snapshot
        #expect(events.received.count == 1)
        #expect(events.connected.map(\.remote.nodeName) == ["good"])
        #expect(server.logs.contains(level: .warning, "refused peer connection"))
    }

    @Test func aPeerWhoseCertificateNamesAnotherNodeIsRefused() async throws {
        let pki = try PeerPKI(cluster: ["server", "good"], other: [])
        let server = try await PeerNode.start(name: "server", security: .mutualTLS(pki.tls("server")))
        // A genuine cluster certificate, but the handshake claims to be someone else.
        let impostor = try await PeerNode.start(name: "impostor", security: .mutualTLS(pki.tls("good")))
        defer { server.stopLater(); impostor.stopLater() }

        impostor.transport.send(bytes("I am not good"), to: server.address)
        let refusal = try await server.events.require("server refuses the impostor") { $0.refused.first }
        #expect(refusal.reason.contains("'good'") && refusal.reason.contains("'impostor'"), "\(refusal.reason)")
        #expect(server.events.snapshot.received.isEmpty)
    }

    // MARK: - Handshake refusals

    @Test func aPeerOfAnotherClusterIsRefusedWithBothClusterIDs() async throws {
        let a = try await PeerNode.start(name: "a", cluster: "alpha")
        let b = try await PeerNode.start(name: "b", cluster: "beta")
        defer { a.stopLater(); b.stopLater() }

        a.transport.send(bytes("merge us"), to: b.address)
        let atB = try await b.events.require("b refuses a") { $0.refused.first }
        let atA = try await a.events.require("a refuses b") { $0.refused.first }
        for refusal in [atA, atB] {
            #expect(refusal.reason.contains("'alpha'") && refusal.reason.contains("'beta'"), "\(refusal.reason)")
        }
        #expect(atA.address == b.address)
        #expect(b.logs.contains(level: .warning, "'alpha'") && b.logs.contains(level: .warning, "'beta'"))
        #expect(b.events.snapshot.received.isEmpty && b.events.snapshot.connected.isEmpty)
    }

    @Test func aNodeDiallingItselfIsRefusedForItsOwnName() async throws {
        let a = try await PeerNode.start(name: "a")
        defer { a.stopLater() }

        a.transport.send(bytes("hello me"), to: a.address)
        let refusal = try await a.events.require("a refuses itself") { $0.refused.first }
        #expect(refusal.reason.contains("own name"), "\(refusal.reason)")
        #expect(a.events.snapshot.received.isEmpty)
    }
}
