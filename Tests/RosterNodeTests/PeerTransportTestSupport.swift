import Foundation
import Logging
import NIOCore
import NIOPosix
import RosterNode
import RosterWire
import Testing

// Shared by the PeerTransport*Tests suites: a transport under test with its recorded delegate
// events and log lines, test certificates, and a raw TCP client for bytes no peer would send.

// MARK: - A node under test

/// A started transport with its recorded events and log lines.
struct PeerNode: Sendable {
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

func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

func isDropped(_ outcome: PeerSendOutcome) -> Bool {
    if case .dropped = outcome { return true }
    return false
}

// MARK: - Recording delegate events

struct RecordedEvents: Sendable {
    var connected: [(remote: Handshake, address: String)] = []
    var disconnected: [(address: String, reason: String)] = []
    var received: [(payload: ByteBuffer, from: Handshake)] = []
    var refused: [(address: String, reason: String)] = []
    var dropped: [Int] = []

    func payloads(from node: String) -> [String] {
        self.received.filter { $0.from.nodeName == node }.map { String(buffer: $0.payload) }
    }
}

struct WaitTimedOut: Error, CustomStringConvertible {
    let description: String
}

/// Records delegate callbacks and wakes tests waiting for a condition on them.
final class EventRecorder: PeerTransportDelegate, @unchecked Sendable {
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
func eventually(_ what: String, timeout: Duration = .seconds(10), _ check: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !check() {
        guard ContinuousClock.now < deadline else { throw WaitTimedOut(description: "timed out waiting for: \(what)") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

// MARK: - Capturing log lines

final class LogCapture: @unchecked Sendable {
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

struct CapturingLogHandler: LogHandler {
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
final class PeerPKI {
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
struct RawClient: Sendable {
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
