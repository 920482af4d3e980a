import NIOCore
import RosterNode
import Testing

/// The peer transport over real loopback TCP while a remote is down or going away: sends queue
/// and are delivered once it starts, the queue stays within its bounds keeping the newest, and
/// shutdown closes every connection. Also the reconnect backoff on its own.
/// Every wait is for a condition with a deadline: delegate events wake the waiting test directly;
/// nothing sleeps to let time pass. The peers under test are in PeerTransportTestSupport.swift.
@Suite struct PeerTransportQueueTests {
    // MARK: - Reconnecting and the bounded queue

    @Test func sendQueuesWhileTheRemoteIsDownAndDeliversOnceItStarts() async throws {
        let port = try await PeerNode.freePort()
        let address = "127.0.0.1:\(port)"
        let a = try await PeerNode.start(name: "a")
        defer { a.stopLater() }

        for index in 0..<5 { a.transport.send(bytes("m\(index)"), to: address) }
        // At least two refused connection attempts: a retries, with backoff, while the payloads wait.
        try await eventually("a retries the unreachable peer") {
            a.logs.entries.filter { $0.message.contains("cannot reach peer \(address)") }.count >= 2
        }
        #expect(a.transport.queueDepth(for: address).frames == 5)

        let b = try await PeerNode.start(name: "b", port: port)
        defer { b.stopLater() }
        try await b.events.require("the queued payloads arrive in order", timeout: .seconds(15)) {
            $0.payloads(from: "a") == ["m0", "m1", "m2", "m3", "m4"]
        }
        try await a.events.require("a reports the connection") { $0.connected.contains { $0.address == address } }
        #expect(a.transport.queueDepth(for: address).frames == 0)
        #expect(a.events.snapshot.refused.isEmpty, "an unreachable peer is retried, not refused")
    }

    @Test func theQueueForAnUnreachablePeerStaysWithinItsBoundAndKeepsTheNewest() async throws {
        let port = try await PeerNode.freePort()
        let address = "127.0.0.1:\(port)"
        let bound = 16
        let a = try await PeerNode.start(name: "a", queue: OutboundQueueLimits(maxFrames: bound, maxBytes: 1 << 20))
        defer { a.stopLater() }

        var outcomes: [PeerSendOutcome] = []
        for index in 0..<(10 * bound) {
            outcomes.append(a.transport.send(bytes("m\(index)"), to: address))
            #expect(a.transport.queueDepth(for: address).frames <= bound)
        }
        #expect(a.transport.queueDepth(for: address).frames == bound)
        #expect(outcomes.prefix(bound).allSatisfy { $0 == .queued })
        #expect(outcomes.dropFirst(bound).allSatisfy { $0 == .queuedDroppingOldest(1) })
        #expect(a.transport.statistics.framesDropped == 9 * bound)
        #expect(a.events.snapshot.dropped.reduce(0, +) == 9 * bound)

        let b = try await PeerNode.start(name: "b", port: port)
        defer { b.stopLater() }
        let newest = ((9 * bound)..<(10 * bound)).map { "m\($0)" }
        try await b.events.require("the newest payloads arrive", timeout: .seconds(15)) {
            $0.payloads(from: "a") == newest
        }
    }

    @Test func aByteBoundDropsTheOldestToo() async throws {
        let a = try await PeerNode.start(name: "a", queue: OutboundQueueLimits(maxFrames: 1000, maxBytes: 1000))
        defer { a.stopLater() }
        let address = "127.0.0.1:\(try await PeerNode.freePort())"

        for _ in 0..<10 { a.transport.send(ByteBuffer(repeating: 1, count: 300), to: address) }
        let depth = a.transport.queueDepth(for: address)
        #expect(depth.frames == 3 && depth.bytes == 900)
        #expect(isDropped(a.transport.send(ByteBuffer(repeating: 1, count: 1001), to: address)))
        #expect(isDropped(a.transport.send(bytes("x"), to: "no-port")))
        #expect(isDropped(a.transport.send(bytes("x"), to: "::1:80")))
    }

    @Test func shutdownClosesEveryConnectionAndThePeerSeesTheDisconnect() async throws {
        let a = try await PeerNode.start(name: "a")
        let b = try await PeerNode.start(name: "b")
        defer { a.stopLater() }
        a.transport.send(bytes("hi"), to: b.address)
        try await b.events.require("connected") { $0.payloads(from: "a") == ["hi"] }

        await b.transport.shutdown()
        let gone = try await a.events.require("a sees b go") { $0.disconnected.first }
        #expect(gone.address == b.address)
        try await b.events.require("b reports its side too") {
            $0.disconnected.first?.reason == "this node is shutting down"
        }
        #expect(isDropped(b.transport.send(bytes("late"), to: a.address)))
        await b.transport.shutdown()  // idempotent
    }

    // MARK: - Pure parts

    @Test func backoffDoublesFromItsInitialDelayUpToItsMaximum() {
        let backoff = ReconnectBackoff.default
        let unjittered = (1...8).map { backoff.delay(afterFailures: $0, random: 0.5) }
        #expect(unjittered == [100, 200, 400, 800, 1600, 3200, 5000, 5000].map { TimeAmount.milliseconds($0) })
        #expect(backoff.delay(afterFailures: 1, random: 0) == .milliseconds(80))
        #expect(backoff.delay(afterFailures: 1, random: 1) == .milliseconds(120))
        #expect(backoff.delay(afterFailures: 100, random: 1) == .seconds(5))
    }
}
