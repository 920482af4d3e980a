import Logging
import NIOCore
import RosterWire

/// The peer-to-peer connections of one node: a TCP listener for peers that dial in, and one
/// outbound connection per address this node sends to, all framed by RosterWire, optionally
/// inside mutual TLS, and each opened by a two-way ``Handshake`` exchange.
///
/// ## Why a class with a lock, not an actor
///
/// ``send(_:to:)`` is called for every gossip message and must be cheap, synchronous and
/// ordered: two `send`s from one caller must reach the peer in that order. An actor would make
/// `send` `async`, or force a `Task` per message, and unstructured tasks do not keep their
/// order. So `send` appends to the peer's queue under a short lock and, at most once per batch,
/// hands a drain to the peer's event loop. Everything else (connection state machines, timers,
/// reading) runs on event loops, as NIO wants. The lock guards only small maps and queues and is
/// never held across I/O or a delegate call.
///
/// ## Lifecycle
///
/// `init`, then ``start(bind:port:)`` to accept peers, ``send(_:to:)`` from anywhere, and
/// ``shutdown()`` once at the end: it closes every connection and breaks the reference cycles
/// between the transport and its connections, so it must be called.
///
/// ## What is guaranteed
///
/// Delivery is best effort, in order per connection: a payload in flight when a connection
/// breaks is lost, and a full queue drops its oldest payloads. Anti-entropy above this layer
/// repairs both. Every failure closes one connection only: a bad peer never affects another.
public final class PeerTransport: Sendable {
    /// The configuration the transport was created with.
    public let configuration: PeerTransportConfiguration
    let group: any EventLoopGroup
    let logger: Logger
    let delegate: any PeerTransportDelegate
    let counters = TransportLocked(PeerTransportStatistics())
    private let state: TransportLocked<State>

    private struct State {
        var handshake: Handshake
        var lifecycle = Lifecycle.initial
        var serverChannel: (any Channel)?
        var inbound: [ObjectIdentifier: any Channel] = [:]
        var outbound: [String: OutboundPeer] = [:]
        var refusedOverCapacity = 0
    }

    private enum Lifecycle {
        case initial
        case starting
        case started
        case shutDown
    }

    /// - Parameters:
    ///   - eventLoopGroup: runs every connection; the caller owns it and shuts it down after
    ///     ``shutdown()``.
    ///   - delegate: receives connection events and payloads, on event-loop threads.
    public init(
        configuration: PeerTransportConfiguration,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        delegate: some PeerTransportDelegate
    ) {
        self.configuration = configuration
        self.group = eventLoopGroup
        self.logger = logger
        self.delegate = delegate
        self.state = TransportLocked(State(handshake: configuration.handshake))
    }

    /// The handshake this node sends: the configured one, with `advertise` filled in by `start`
    /// if it was empty.
    public var localHandshake: Handshake {
        self.state.withLock { $0.handshake }
    }

    /// The counters so far.
    public var statistics: PeerTransportStatistics {
        self.counters.withLock { $0 }
    }

    var isShuttingDown: Bool {
        self.state.withLock {
            if case .shutDown = $0.lifecycle { return true }
            return false
        }
    }

    // MARK: - Starting

    /// Starts accepting peer connections on `host:port`.
    ///
    /// - Parameter port: `0` picks a free port, for tests.
    /// - Returns: the port actually bound.
    /// - Throws: ``PeerTransportError`` if the transport was already started or shut down, or if
    ///   this node's handshake cannot be encoded; NIO's error if the address cannot be bound.
    public func start(bind host: String, port: Int) async throws -> Int {
        do {
            _ = try self.localHandshake.encoded()
        } catch {
            throw PeerTransportError("this node's handshake cannot be sent: \(error)")
        }
        try self.state.withLock { state in
            switch state.lifecycle {
            case .initial: state.lifecycle = .starting
            case .starting, .started: throw PeerTransportError("the peer transport is already started")
            case .shutDown: throw PeerTransportError("the peer transport was shut down and cannot be started again")
            }
        }
        let channel: any Channel
        do {
            channel = try await self.bindListener(host: host, port: port)
        } catch {
            self.state.withLock { $0.lifecycle = .initial }
            throw PeerTransportError("cannot listen for peers on \(host):\(port): \(error)")
        }
        let boundPort = channel.localAddress?.port ?? port
        let keep = self.state.withLock { state -> Bool in
            guard case .starting = state.lifecycle else { return false }  // shut down meanwhile
            state.lifecycle = .started
            state.serverChannel = channel
            if state.handshake.advertise.isEmpty {
                state.handshake.advertise = host.contains(":") ? "[\(host)]:\(boundPort)" : "\(host):\(boundPort)"
            }
            return true
        }
        guard keep else {
            try? await channel.close()
            throw PeerTransportError("the peer transport was shut down while starting")
        }
        let security: String
        switch self.configuration.security {
        case .mutualTLS: security = "mutual TLS"
        case .insecurePlaintext: security = "PLAINTEXT (--insecure-plaintext)"
        }
        self.logger.info(
            "listening for peers on \(host):\(boundPort) with \(security)",
            metadata: ["peer.bind": "\(host):\(boundPort)"]
        )
        return boundPort
    }

    // MARK: - Sending

    /// Queues `payload` for the peer at `address` (`host:port`, or `[v6]:port`) and returns at
    /// once.
    ///
    /// One connection per address is reused for all sends. It is opened on the first send,
    /// payloads queue while it connects, and after a failure it is retried with backoff while
    /// anything is queued. When the queue is full the oldest payloads are dropped; see
    /// ``OutboundQueueLimits``.
    ///
    /// - Returns: what happened to the payload (and to older ones), for callers that care.
    @discardableResult
    public func send(_ payload: ByteBuffer, to address: String) -> PeerSendOutcome {
        let lookup = self.state.withLock { state -> Result<OutboundPeer, PeerTransportError> in
            if case .shutDown = state.lifecycle {
                return .failure(PeerTransportError("the peer transport is shut down"))
            }
            if let peer = state.outbound[address] { return .success(peer) }
            guard let target = PeerAddress(address) else {
                return .failure(
                    PeerTransportError(
                        "peer address '\(address)' is not host:port (an IPv6 host goes in brackets: [::1]:8301)"
                    )
                )
            }
            let peer = OutboundPeer(address: address, target: target, eventLoop: self.group.next(), transport: self)
            state.outbound[address] = peer
            return .success(peer)
        }
        switch lookup {
        case .success(let peer):
            return peer.send(payload)
        case .failure(let error):
            self.reportDropped(1, address: address, reason: error.message, level: .error)
            return .dropped(error.message)
        }
    }

    /// Payloads and bytes queued for `address` and not yet written to its connection.
    public func queueDepth(for address: String) -> (frames: Int, bytes: Int) {
        self.state.withLock { $0.outbound[address] }?.queueDepth ?? (0, 0)
    }

    func reportDropped(_ count: Int, address: String, reason: String, level: Logger.Level) {
        self.counters.withLock { $0.framesDropped += count }
        self.logger.log(
            level: level,
            "dropped \(count) payload(s) for peer \(address): \(reason)",
            metadata: ["peer.address": "\(address)"]
        )
        self.delegate.dropped(frames: count, address: address)
    }

    // MARK: - Inbound bookkeeping

    /// Records an accepted connection so that `shutdown` can close it. `false` once shut down:
    /// the connection must be closed at once.
    func inboundOpened(_ channel: any Channel) -> Bool {
        let (accepted, refusedSoFar) = self.state.withLock { state -> (Bool, Int) in
            if case .shutDown = state.lifecycle { return (false, 0) }
            guard state.inbound.count < self.configuration.maxInboundConnections else {
                state.refusedOverCapacity += 1
                return (false, state.refusedOverCapacity)
            }
            state.inbound[ObjectIdentifier(channel)] = channel
            return (true, 0)
        }
        // Logged at 1, 2, 4, 8, ... refusals, so a flood can't flood the log too.
        if !accepted && refusedSoFar > 0 && refusedSoFar & (refusedSoFar - 1) == 0 {
            self.logger.warning(
                "refused an inbound peer connection: \(self.configuration.maxInboundConnections) are already open (\(refusedSoFar) refused so far)")
        }
        return accepted
    }

    func inboundClosed(_ channel: any Channel) {
        _ = self.state.withLock { $0.inbound.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    // MARK: - Shutting down

    /// Stops listening, closes every connection, drops every queue. Idempotent. The delegate
    /// still hears `peerDisconnected` for connections that were up.
    public func shutdown() async {
        let (server, inbound, outbound) = self.state.withLock {
            state -> ((any Channel)?, [any Channel], [OutboundPeer]) in
            state.lifecycle = .shutDown
            defer {
                state.serverChannel = nil
                state.inbound = [:]
                state.outbound = [:]
            }
            return (state.serverChannel, Array(state.inbound.values), Array(state.outbound.values))
        }
        if let server {
            server.close(promise: nil)
            try? await server.closeFuture.get()
        }
        var closing: [EventLoopFuture<Void>] = outbound.map { $0.close() }
        for channel in inbound {
            channel.close(promise: nil)
            closing.append(channel.closeFuture)
        }
        for future in closing {
            try? await future.get()
        }
        if server != nil || !inbound.isEmpty || !outbound.isEmpty {
            self.logger.info("peer transport shut down")
        }
    }
}

// MARK: - Results and errors

/// What ``PeerTransport/send(_:to:)`` did with a payload.
public enum PeerSendOutcome: Hashable, Sendable {
    /// Queued; it will be written once the connection is up.
    case queued
    /// Queued, and this many older payloads were dropped to keep the queue within its bound.
    case queuedDroppingOldest(Int)
    /// Not queued, for the reason given: the address is malformed, the payload is larger than
    /// the queue bound, or the transport is shut down.
    case dropped(String)
}

/// A peer transport that cannot do what it was asked, with a message saying why.
public struct PeerTransportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong and, where possible, what would be right.
    public let message: String

    init(_ message: String) {
        self.message = message
    }

    public var description: String { self.message }
}
