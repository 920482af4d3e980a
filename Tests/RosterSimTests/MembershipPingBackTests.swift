import RosterCore
import Testing

/// Regression for seed 100: a node that restarted while another was cut off never learned of
/// it, because pings name no sender and the other's news about itself had stopped spreading.
@Suite("Membership learns of a pinging stranger")
struct MembershipPingBackTests {
    @Test("a ping from an address with no live record is answered with a ping back, whose ack introduces the sender")
    func pingFromUnknownSenderIsPingedBack() throws {
        let aAddress = "a:1", cAddress = "c:1"
        var a = MembershipInstance(myself: MemberIdentity(name: "a", generation: 1, address: aAddress), seed: 1)
        var c = MembershipInstance(myself: MemberIdentity(name: "c", generation: 1, address: cAddress), seed: 2)
        _ = c.join(seeds: [], now: 0)
        // a hears of c (as through gossip); c never hears of a.
        _ = a.receive(.join(c.myself), from: cAddress, now: 0)
        var now: Int64 = 0
        var pingToC: MembershipMessage?
        while pingToC == nil && now < 5_000 {
            now += 50
            for case .send(let message, let to) in a.tick(now: now) where to == cAddress {
                if case .ping = message { pingToC = message }
            }
        }
        let ping = try #require(pingToC, "a never probed c")
        #expect(c.member(named: "a") == nil)
        let replies = c.receive(ping, from: aAddress, now: now)
        let pingBack = replies.compactMap { directive -> MembershipMessage? in
            guard case .send(let message, let to) = directive, to == aAddress, case .ping = message else { return nil }
            return message
        }.first
        let back = try #require(pingBack, "c did not ping back the stranger")
        let ack = a.receive(back, from: cAddress, now: now).compactMap { directive -> MembershipMessage? in
            guard case .send(let message, let to) = directive, to == cAddress, case .ack = message else { return nil }
            return message
        }.first
        _ = c.receive(try #require(ack), from: aAddress, now: now)
        #expect(c.member(named: "a")?.state == .alive)
        // Once known, a ping from a draws only the ack.
        let later = c.receive(ping, from: aAddress, now: now + 1)
        #expect(later.allSatisfy { if case .send(.ping, _) = $0 { false } else { true } })
    }
}
