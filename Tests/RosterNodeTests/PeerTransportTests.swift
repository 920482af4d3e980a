import Foundation
import Logging
import NIOCore
import NIOPosix
import RosterNode
import RosterWire
import Testing

/// The peer transport over real loopback TCP. Every wait is for a condition with a deadline:
/// delegate events wake the waiting test directly; nothing sleeps to let time pass.
@Suite struct PeerTransportTests {
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

// MARK: - A node under test

/// A started transport with its recorded events and log lines.
private struct PeerNode: Sendable {
    let transport: PeerTransport
    let events: EventRecorder
    let logs: LogCapture
    let port: Int
    var address: String { "127.0.0.1:\(self.port)" }

    /// Test timings: the defaults are 100 ms to 5 s, too slow to wait for in a test.
    static let fastBackoff = ReconnectBackoff(initial: .milliseconds(50), maximum: .milliseconds(400), jitter: 0.2)

    static func start(
        name: String,
        cluster: String = "test",
        security: PeerTransportSecurity = .insecurePlaintext,
        limits: FrameLimits = .default,
        queue: OutboundQueueLimits = .default,
        handshakeTimeout: TimeAmount = .seconds(3),
        maxInboundConnections: Int = 1024,
        port: Int = 0
    ) async throws -> PeerNode {
        let events = EventRecorder()
        let logs = LogCapture()
        let configuration = PeerTransportConfiguration(
            handshake: Handshake(clusterID: cluster, nodeName: name, generation: 1, advertise: ""),
            security: security,
            limits: limits,
            outboundQueue: queue,
            handshakeTimeout: handshakeTimeout,
            reconnectBackoff: fastBackoff,
            maxInboundConnections: maxInboundConnections
        )
        let transport = PeerTransport(
            configuration: configuration,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logs.logger(label: "peer.\(name)"),
            delegate: events
        )
        let bound = try await transport.start(bind: "127.0.0.1", port: port)
        return PeerNode(transport: transport, events: events, logs: logs, port: bound)
    }

    /// A port that was free a moment ago: bound by a throwaway listener and released.
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }

    /// `defer` cannot `await`; the shutdown runs detached, and the test does not depend on it.
    func stopLater() {
        let transport = self.transport
        Task { await transport.shutdown() }
    }
}

private func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

private func isDropped(_ outcome: PeerSendOutcome) -> Bool {
    if case .dropped = outcome { return true }
    return false
}

// MARK: - Recording delegate events

private struct RecordedEvents: Sendable {
    var connected: [(remote: Handshake, address: String)] = []
    var disconnected: [(address: String, reason: String)] = []
    var received: [(payload: ByteBuffer, from: Handshake)] = []
    var refused: [(address: String, reason: String)] = []
    var dropped: [Int] = []

    func payloads(from node: String) -> [String] {
        self.received.filter { $0.from.nodeName == node }.map { String(buffer: $0.payload) }
    }
}

private struct WaitTimedOut: Error, CustomStringConvertible {
    let description: String
}

/// Records delegate callbacks and wakes tests waiting for a condition on them.
private final class EventRecorder: PeerTransportDelegate, @unchecked Sendable {
    private typealias Check = (RecordedEvents) -> Bool
    private let lock = NSLock()
    private var events = RecordedEvents()
    private var waiters: [UUID: (check: Check, continuation: CheckedContinuation<Bool, Never>)] = [:]

    var snapshot: RecordedEvents { self.lock.withLock { self.events } }

    func peerConnected(_ remote: Handshake, address: String) { self.record { $0.connected.append((remote, address)) } }
    func peerDisconnected(address: String, reason: String) { self.record { $0.disconnected.append((address, reason)) } }
    func received(_ payload: ByteBuffer, from remote: Handshake) {
        self.record { $0.received.append((payload, remote)) }
    }
    func refused(address: String, reason: String) { self.record { $0.refused.append((address, reason)) } }
    func dropped(frames: Int, address: String) { self.record { $0.dropped.append(frames) } }

    private func record(_ change: (inout RecordedEvents) -> Void) {
        let ready: [CheckedContinuation<Bool, Never>] = self.lock.withLock {
            change(&self.events)
            let done = self.waiters.filter { $0.value.check(self.events) }
            for id in done.keys { self.waiters[id] = nil }
            return done.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    /// Waits until `value` returns non-nil for the recorded events, or fails after `timeout`.
    @discardableResult
    func require<Value>(
        _ what: String,
        timeout: Duration = .seconds(10),
        _ value: @escaping @Sendable (RecordedEvents) -> Value?
    ) async throws -> Value {
        let id = UUID()
        let met = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let already = self.lock.withLock {
                if value(self.events) != nil { return true }
                self.waiters[id] = ({ value($0) != nil }, continuation)
                return false
            }
            if already {
                continuation.resume(returning: true)
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                let expired = self.lock.withLock { self.waiters.removeValue(forKey: id) }
                expired?.continuation.resume(returning: false)
            }
        }
        guard met, let result = value(self.snapshot) else {
            throw WaitTimedOut(description: "timed out after \(timeout) waiting for: \(what); events: \(self.snapshot)")
        }
        return result
    }

    func require(
        _ what: String, timeout: Duration = .seconds(10), _ check: @escaping @Sendable (RecordedEvents) -> Bool
    )
        async throws
    {
        try await self.require(what, timeout: timeout) { check($0) ? true : nil }
    }
}

/// Polls a condition that no delegate event signals (log lines, queue depth), until a deadline.
private func eventually(_ what: String, timeout: Duration = .seconds(10), _ check: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !check() {
        guard ContinuousClock.now < deadline else { throw WaitTimedOut(description: "timed out waiting for: \(what)") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

// MARK: - Capturing log lines

private final class LogCapture: @unchecked Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
    }

    private let lock = NSLock()
    private var stored: [Entry] = []

    var entries: [Entry] { self.lock.withLock { self.stored } }

    func append(_ entry: Entry) { self.lock.withLock { self.stored.append(entry) } }

    func contains(level: Logger.Level, _ text: String) -> Bool {
        self.entries.contains { $0.level == level && $0.message.contains(text) }
    }

    func logger(label: String) -> Logger {
        var logger = Logger(label: label) { _ in CapturingLogHandler(capture: self) }
        logger.logLevel = .debug
        return logger
    }
}

private struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        self.capture.append(.init(level: event.level, message: event.message.description))
    }
}

// MARK: - Certificates

/// A cluster CA and an unrelated CA, each with node certificates, in a scratch directory.
private final class PeerPKI {
    enum Authority: String {
        case cluster
        case other
    }

    let root: String

    init(cluster: [String], other: [String]) throws {
        self.root = FileManager.default.temporaryDirectory.appendingPathComponent("roster-peer-\(UUID())").path
        for (authority, nodes) in [(Authority.cluster, cluster), (.other, other)] {
            let dir = "\(self.root)/\(authority.rawValue)"
            _ = try CertificateAuthority.create(inDirectory: dir)
            for node in nodes { _ = try CertificateAuthority.issueNodeCertificate(inDirectory: dir, nodeName: node) }
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: self.root) }

    func tls(_ node: String, ca: Authority = .cluster) throws -> PeerTransportTLS {
        let dir = "\(self.root)/\(ca.rawValue)"
        let material = try PeerTLSMaterial.load(
            caPath: "\(dir)/ca.pem",
            certPath: "\(dir)/\(node).pem",
            keyPath: "\(dir)/\(node)-key.pem"
        )
        return try PeerTransportTLS(material: material)
    }
}

// MARK: - A raw TCP client

/// A plain NIO client with no Roster handlers, for sending bytes no peer would send.
private struct RawClient: Sendable {
    let channel: any Channel
    let localAddress: String

    static func connect(port: Int) async throws -> RawClient {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port)
            .get()
        // Under load the server may already have closed a silent client (the handshake timeout is
        // short in tests), and a closed channel has no local address: that is not a failure here.
        let address = channel.localAddress
        let local = "\(address?.ipAddress ?? "closed"):\(address?.port ?? 0)"
        return RawClient(channel: channel, localAddress: local)
    }

    func write(_ bytes: [UInt8]) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Whether the server closed the connection within the deadline. On a timeout the client
    /// closes it itself, so that nothing is left waiting.
    func closedByServer(timeout: Duration = .seconds(10)) async -> Bool {
        let channel = self.channel
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                try? await channel.closeFuture.get()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            if !first { channel.close(promise: nil) }
            group.cancelAll()
            return first
        }
    }
}
