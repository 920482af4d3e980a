import NIOCore
import RosterNode
import RosterWire
import Testing

/// The peer transport over real loopback TCP given what no good peer sends: garbage, a
/// decompression bomb, silence instead of a handshake, a flood of connections, a payload too
/// large for a frame. Each closes or drops only what it must, and the transport keeps serving.
/// Every wait is for a condition with a deadline: delegate events wake the waiting test directly;
/// nothing sleeps to let time pass. The peers under test are in PeerTransportTestSupport.swift.
@Suite struct PeerTransportHostileInputTests {
    // MARK: - Hostile bytes

    @Test func garbageBytesCloseThatConnectionAndTheTransportKeepsServing() async throws {
        let b = try await PeerNode.start(name: "b")
        let a = try await PeerNode.start(name: "a")
        defer { a.stopLater(); b.stopLater() }

        let raw = try await RawClient.connect(port: b.port)
        try await raw.write(Array("GET /v1/agent/members HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(await raw.closedByServer(), "the server should close a connection that sends garbage")
        let refusal = try await b.events.require("b refuses the garbage") { $0.refused.first }
        #expect(refusal.address == raw.localAddress)
        #expect(refusal.reason.contains("over the limit"), "\(refusal.reason)")

        a.transport.send(bytes("still there?"), to: b.address)
        try await b.events.require("a good peer gets through afterwards") { $0.payloads(from: "a") == ["still there?"] }
    }

    @Test func aDecompressionBombAfterAValidHandshakeClosesOnlyThatConnection() async throws {
        let b = try await PeerNode.start(name: "b")
        let a = try await PeerNode.start(name: "a")
        defer { a.stopLater(); b.stopLater() }
        a.transport.send(bytes("before"), to: b.address)
        try await b.events.require("a is connected") { $0.payloads(from: "a") == ["before"] }

        let raw = try await RawClient.connect(port: b.port)
        var attack = ByteBuffer()
        let handshake = Handshake(clusterID: "test", nodeName: "bomber", generation: 1, advertise: "bomber:1")
        try Frame(payload: try handshake.encoded()).encode(limits: .default, into: &attack)
        // A compressed frame declaring 1 GiB of output from a 16-byte block.
        attack.writeInteger(UInt32(1 + 4 + 16))
        attack.writeInteger(FrameHeader(flags: .lz4Compressed).byte)
        attack.writeInteger(UInt32(1 << 30))
        attack.writeRepeatingByte(0, count: 16)
        try await raw.write(Array(attack.readableBytesView))

        #expect(await raw.closedByServer())
        let gone = try await b.events.require("b drops the bomber") { $0.disconnected.first }
        #expect(gone.address == raw.localAddress)
        #expect(gone.reason.contains("uncompressed bytes"), "\(gone.reason)")
        #expect(b.logs.contains(level: .warning, "1073741824"))

        a.transport.send(bytes("after"), to: b.address)
        try await b.events.require("a's connection is untouched") { $0.payloads(from: "a") == ["before", "after"] }
        let events = b.events.snapshot
        #expect(events.disconnected.count == 1, "only the bomber's connection closed: \(events.disconnected)")
        #expect(events.payloads(from: "bomber").isEmpty)
    }

    @Test func aConnectionThatNeverSendsAHandshakeTimesOut() async throws {
        let b = try await PeerNode.start(name: "b", handshakeTimeout: .milliseconds(300))
        defer { b.stopLater() }

        let raw = try await RawClient.connect(port: b.port)
        #expect(await raw.closedByServer())
        let refusal = try await b.events.require("b gives up on the silent client") { $0.refused.first }
        #expect(refusal.reason.contains("no Roster handshake within 300 ms"), "\(refusal.reason)")
    }

    @Test func inboundConnectionsPastTheBoundAreClosedAndThePeerStillServes() async throws {
        // A long handshake timeout keeps the first two open however slow the machine is, so the
        // third can only be closed by the bound.
        let b = try await PeerNode.start(name: "b", handshakeTimeout: .seconds(60), maxInboundConnections: 2)
        defer { b.stopLater() }
        let first = try await RawClient.connect(port: b.port)
        let second = try await RawClient.connect(port: b.port)
        let third = try await RawClient.connect(port: b.port)
        #expect(await third.closedByServer(), "the third connection is past the bound of two")
        // Refused by the bound, not merely timed out for sending no handshake.
        #expect(b.logs.contains(level: .warning, "2 are already open"))
        try? await first.channel.close()
        try? await second.channel.close()
        // Once the others are gone, a real peer connects and is served.
        let a = try await PeerNode.start(name: "a")
        defer { a.stopLater() }
        a.transport.send(bytes("hello"), to: b.address)
        try await b.events.require("a real peer gets through after the flood") { $0.payloads(from: "a") == ["hello"] }
    }

    @Test func aPayloadTooLargeForAFrameIsDroppedAndTheConnectionCarriesOn() async throws {
        let limits = FrameLimits(maxFrameBytes: 4096, maxDecompressedBytes: 4096, compressionThreshold: 1 << 20)
        let a = try await PeerNode.start(name: "a", limits: limits)
        let b = try await PeerNode.start(name: "b", limits: limits)
        defer { a.stopLater(); b.stopLater() }

        a.transport.send(bytes("first"), to: b.address)
        a.transport.send(ByteBuffer(repeating: 7, count: 10_000), to: b.address)
        a.transport.send(bytes("third"), to: b.address)
        try await b.events.require("the small payloads arrive") { $0.payloads(from: "a") == ["first", "third"] }
        try await a.events.require("the large one is reported dropped") { $0.dropped.reduce(0, +) == 1 }
        #expect(b.events.snapshot.disconnected.isEmpty)
    }
}
