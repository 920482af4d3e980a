import Foundation
import Testing

@testable import RosterDNS

/// Garbage must never trap: the decoder throws, and the whole request path answers FORMERR or
/// nothing. A failure prints its seed; rerun with `DNS_FUZZ_SEED=<seed>` to reproduce it.
@Suite struct DNSFuzzTests {
    static func seed() -> UInt64 {
        let seed =
            ProcessInfo.processInfo.environment["DNS_FUZZ_SEED"].flatMap { UInt64($0) }
            ?? UInt64.random(in: 1...UInt64.max)
        print("DNS fuzz seed: \(seed) (set DNS_FUZZ_SEED to reproduce)")
        return seed
    }

    static let resolver = DNSResolver(
        dataSource: InMemoryDataSource(
            instances: (0..<5).map { instance("i\($0)", host: "10.0.0.\($0)", tags: ["primary"]) },
            nodes: ["n1": "10.1.0.1"]))

    /// Replies to anything must themselves be well-formed, and a reply is never sent to a response.
    static func checkReply(to bytes: [UInt8], seed: UInt64) async {
        var rng = SeededGenerator(seed: seed)
        guard let reply = await resolver.respond(to: bytes, over: .udp, using: &rng) else { return }
        #expect(reply.count <= 4096, "seed \(seed)")
        let decoded = try? DNSMessage(decoding: reply)
        #expect(decoded?.header.isResponse == true, "seed \(seed): reply does not parse")
    }

    @Test func randomBytesNeverTrap() async {
        let seed = Self.seed()
        var rng = SeededGenerator(seed: seed)
        for _ in 0..<5_000 {
            let count = Int.random(in: 0...300, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if bytes.count > 2 { bytes[2] &= 0x7F }  // mostly queries, so that the resolver runs
            _ = try? DNSMessage(decoding: bytes)
            await Self.checkReply(to: bytes, seed: seed)
        }
    }

    @Test func everyTruncationOfAValidMessageThrowsOrParses() async throws {
        let seed = Self.seed()
        var response = query("_web._primary.service.roster.", .srv, edns: 1232)
        var rng = SeededGenerator(seed: seed)
        response = await Self.resolver.response(to: response, using: &rng)
        for message in [query("web.service.roster.", edns: 4096), response] {
            let bytes = message.encoded()
            for length in 0..<bytes.count {
                let prefix = Array(bytes.prefix(length))
                #expect(throws: DNSWireError.self, "length \(length)") { try DNSMessage(decoding: prefix) }
                await Self.checkReply(to: prefix, seed: seed)
            }
            #expect(try DNSMessage(decoding: bytes) == message)
        }
    }

    @Test func mutatedMessagesNeverTrap() async {
        let seed = Self.seed()
        var rng = SeededGenerator(seed: seed)
        let valid = query("tag.web.service.roster.", .aaaa, edns: 1232).encoded()
        var response = query("_web._tcp.service.roster.", .srv)
        response = await Self.resolver.response(to: response, using: &rng)
        let responseBytes = response.encoded()
        for round in 0..<5_000 {
            var bytes = round.isMultiple(of: 2) ? valid : responseBytes
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let index = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes[index] = 0xC0 | UInt8.random(in: 0...0x3F, using: &rng)  // stray pointers
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: index)
                default: bytes.remove(at: index)
                }
            }
            _ = try? DNSMessage(decoding: bytes)
            bytes[2] &= 0x7F
            await Self.checkReply(to: bytes, seed: seed)
        }
    }
}
