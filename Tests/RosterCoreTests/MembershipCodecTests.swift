import Testing

@testable import RosterCore

@Suite struct MembershipCodecTests {
    static let a = MemberIdentity(name: "node-a", generation: 1_700_000_000_123, address: "10.0.0.1:7946")
    static let b = MemberIdentity(name: "b", generation: 2, address: "[::1]:7946")
    static let gossip = [
        Member(identity: a, state: .alive, incarnation: 0),
        Member(identity: b, state: .suspect, incarnation: 7),
        Member(identity: MemberIdentity(name: "ü", generation: 0, address: ""), state: .failed, incarnation: .max),
        Member(identity: b, state: .left, incarnation: 8),
    ]

    static let samples: [MembershipMessage] = [
        .ping(sequence: 0, gossip: []),
        .ping(sequence: .max, gossip: gossip),
        .ack(sequence: 42, from: a, incarnation: 3, gossip: gossip),
        .pingRequest(sequence: 300, target: b, gossip: [gossip[1]]),
        .indirectAck(sequence: 301, target: b, incarnation: 9, gossip: []),
        .nack(sequence: 302, from: a, gossip: gossip),
        .join(Member(identity: a, state: .alive, incarnation: 2)),
        .joinReply(members: gossip),
        .joinReply(members: []),
    ]

    @Test func everyMessageKindRoundTrips() throws {
        for message in Self.samples {
            let decoded = try MembershipMessage.decode(bytes: message.encoded)
            #expect(decoded == message)
        }
    }

    @Test func messagesDecodeOneAfterAnotherFromOneReader() throws {
        var writer = ByteWriter()
        for message in Self.samples { message.encode(into: &writer) }
        var reader = ByteReader(writer.bytes)
        for message in Self.samples { #expect(try MembershipMessage.decode(from: &reader) == message) }
        #expect(reader.remaining == 0)
    }

    @Test func everyTruncationOfAValidMessageThrows() {
        for message in Self.samples {
            let bytes = message.encoded
            for length in 0..<bytes.count {
                #expect(throws: DecodingFailure.self) {
                    try MembershipMessage.decode(bytes: Array(bytes.prefix(length)))
                }
            }
        }
    }

    @Test func trailingBytesAreRejected() {
        #expect(throws: DecodingFailure.self) { try MembershipMessage.decode(bytes: Self.samples[1].encoded + [0]) }
    }

    @Test func unknownTypeAndStateBytesAreRejected() {
        #expect(throws: DecodingFailure.self) { try MembershipMessage.decode(bytes: [0]) }
        #expect(throws: DecodingFailure.self) { try MembershipMessage.decode(bytes: [8, 0]) }
        // A join whose member state byte is 4.
        var bytes = MembershipMessage.join(Member(identity: Self.b, state: .left, incarnation: 1)).encoded
        let stateIndex = bytes.count - 2
        #expect(bytes[stateIndex] == 3)
        bytes[stateIndex] = 4
        #expect(throws: DecodingFailure.self) { try MembershipMessage.decode(bytes: bytes) }
    }

    @Test func forgedCountsAreRejectedBeforeAllocating() {
        // A ping claiming 2^62 gossip entries, and one claiming 300 (over the cap) with room.
        var huge = ByteWriter()
        huge.write(UInt8(1))
        huge.writeVarint(1)
        huge.writeVarint(1 << 62)
        #expect(throws: DecodingFailure.self) { try MembershipMessage.decode(bytes: huge.bytes) }

        var overCap = ByteWriter()
        overCap.write(UInt8(1))
        overCap.writeVarint(1)
        overCap.writeVarint(300)
        overCap.append([UInt8](repeating: 0, count: 4_000))
        #expect(throws: DecodingFailure.self) { try MembershipMessage.decode(bytes: overCap.bytes) }
    }

    @Test func emptyMemberNamesAreRejected() {
        let nameless = MemberIdentity(name: "", generation: 1, address: "x:1")
        let bytes = MembershipMessage.join(Member(identity: nameless, state: .alive, incarnation: 0)).encoded
        #expect(throws: DecodingFailure.self) { try MembershipMessage.decode(bytes: bytes) }
    }

    @Test func randomGarbageNeverTraps() {
        let seed = UInt64.random(in: 0...UInt64.max)
        var rng = SeededRandom(seed: seed)
        var decoded = 0
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...64, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Give half the buffers a valid type byte, so decoding gets past the first check.
            if !bytes.isEmpty, Bool.random(using: &rng) { bytes[0] = UInt8.random(in: 1...7, using: &rng) }
            if (try? MembershipMessage.decode(bytes: bytes)) != nil { decoded += 1 }
        }
        #expect(decoded < 20_000, "seed \(seed)")
    }

    @Test func mutatedValidMessagesNeverTrapAndReencodeStably() {
        let seed = UInt64.random(in: 0...UInt64.max)
        var rng = SeededRandom(seed: seed)
        for _ in 0..<20_000 {
            var bytes = Self.samples.randomElement(using: &rng)!.encoded
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let index = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: index)
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: index)
                }
                if bytes.isEmpty { break }
            }
            // Whatever decodes must encode back to something that decodes to the same message.
            if let message = try? MembershipMessage.decode(bytes: bytes) {
                #expect((try? MembershipMessage.decode(bytes: message.encoded)) == message, "seed \(seed)")
            }
        }
    }
}
