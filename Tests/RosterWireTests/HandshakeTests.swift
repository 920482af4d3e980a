import NIOCore
import RosterWire
import Testing

@Suite("Handshake")
struct HandshakeTests {
    let local = Handshake(clusterID: "roster", nodeName: "n1", generation: 1_700_000_000, advertise: "10.0.0.1:7946")

    // MARK: - Codec

    @Test func roundTripsIncludingUnicodeAndLeavesTrailingBytes() throws {
        let remote = Handshake(
            clusterID: "prod-🇪🇺",
            nodeName: "nœud-4",
            generation: .max,
            protocolVersion: 1,
            advertise: "[::1]:7946"
        )
        var buffer = try remote.encoded()
        buffer.writeString("next")
        #expect(try Handshake.decode(from: &buffer) == remote)
        #expect(buffer == ByteBuffer(string: "next"))
    }

    @Test func emptyStringsRoundTrip() throws {
        let blank = Handshake(clusterID: "", nodeName: "", generation: 0, protocolVersion: 0, advertise: "")
        var buffer = try blank.encoded()
        #expect(buffer.readableBytes == 4 + 1 + 8 + 3)
        #expect(try Handshake.decode(from: &buffer) == blank)
    }

    @Test func everyTruncationIsRefusedAndConsumesNothing() throws {
        let bytes = Array(try self.local.encoded().readableBytesView)
        for count in 0..<bytes.count {
            var buffer = ByteBuffer(bytes: bytes.prefix(count))
            let error = #expect(throws: WireError.self) { try Handshake.decode(from: &buffer) }
            #expect(error?.code == .truncated, "prefix of \(count) bytes: \(String(describing: error))")
            #expect(buffer.readableBytes == count)
        }
    }

    @Test func wrongMagicIsReportedAsNotARosterPeer() {
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")
        let error = #expect(throws: WireError.self) { try Handshake.decode(from: &buffer) }
        #expect(error?.code == .notARosterPeer)
    }

    @Test func invalidUTF8IsRefused() throws {
        var buffer = ByteBuffer()
        buffer.writeInteger(Handshake.magic)
        buffer.writeInteger(UInt8(1))
        buffer.writeInteger(UInt64(7))
        buffer.writeBytes([2, 0xC3, 0x28])  // clusterID: an invalid two-byte sequence
        let error = #expect(throws: WireError.self) { try Handshake.decode(from: &buffer) }
        #expect(error?.code == .invalidUTF8)
        #expect(error?.message.contains("clusterID") == true)
    }

    @Test func overlongFieldIsRefusedOnEncodeAndWritesNothing() {
        var handshake = self.local
        handshake.advertise = String(repeating: "a", count: 256)
        var buffer = ByteBuffer(string: "kept")
        let error = #expect(throws: WireError.self) { try handshake.encode(into: &buffer) }
        #expect(error?.code == .fieldTooLong)
        #expect(error?.message.contains("advertise") == true)
        #expect(buffer == ByteBuffer(string: "kept"))

        handshake.advertise = String(repeating: "a", count: 255)
        #expect(throws: Never.self) { try handshake.encoded() }
    }

    // MARK: - Validation

    @Test func sameClusterAndVersionIsAccepted() {
        var remote = self.local
        remote.nodeName = "n2"
        #expect(Handshake.validate(remote: remote, localClusterID: "roster", localNodeName: "n1") == .accept)
        #expect(HandshakeVerdict.accept.reason == nil)
    }

    @Test func anotherClusterIsRefusedWithAReadableReason() {
        let remote = Handshake(clusterID: "other", nodeName: "n4", generation: 3, advertise: "10.0.0.4:7946")
        let verdict = Handshake.validate(remote: remote, localClusterID: "roster", localNodeName: "n1")
        #expect(verdict == .reject(.clusterMismatch(peer: "n4", peerCluster: "other", localCluster: "roster")))
        #expect(verdict.reason == "peer n4 is in cluster 'other', this node is in 'roster'")
    }

    @Test func unsupportedProtocolVersionIsRefused() {
        var remote = self.local
        remote.nodeName = "n5"
        remote.protocolVersion = 9
        let verdict = Handshake.validate(remote: remote, localClusterID: "roster")
        #expect(verdict.reason == "peer n5 speaks protocol version 9, this node speaks version 1")
        let wider = Handshake.validate(remote: remote, localClusterID: "roster", supportedVersions: 1...3)
        #expect(wider.reason == "peer n5 speaks protocol version 9, this node speaks versions 1...3")
    }

    @Test func ownNameAndEmptyNameAreRefused() {
        let selfDial = Handshake.validate(remote: self.local, localClusterID: "roster", localNodeName: "n1")
        #expect(selfDial == .reject(.sameNodeName("n1")))

        var nameless = self.local
        nameless.nodeName = ""
        let verdict = Handshake.validate(remote: nameless, localClusterID: "roster", localNodeName: "n1")
        #expect(verdict == .reject(.emptyNodeName(advertise: "10.0.0.1:7946")))
    }

    @Test func peerSuppliedControlCharactersAreEscapedInReasons() {
        let remote = Handshake(clusterID: "evil\nINFO forged", nodeName: "n\u{7}", generation: 1, advertise: "x")
        let reason = Handshake.validate(remote: remote, localClusterID: "roster").reason ?? ""
        #expect(!reason.contains("\n"))
        #expect(!reason.contains("\u{7}"))
        #expect(reason.contains("evil\\nINFO forged"))
    }
}
