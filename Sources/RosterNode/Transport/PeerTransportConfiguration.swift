import NIOCore
import NIOSSL
import RosterWire

/// Everything a ``PeerTransport`` needs to know before it opens a socket.
///
/// The defaults are the ones the agent runs with; tests shorten the timings.
public struct PeerTransportConfiguration: Sendable {
    /// What this node says about itself as the first frame of every connection. If `advertise`
    /// is empty, ``PeerTransport/start(bind:port:)`` fills it in with the bound address.
    public var handshake: Handshake
    /// Mutual TLS, or plaintext. There is deliberately no default: plaintext must be asked for by
    /// name, because the agent only allows it with `--insecure-plaintext`.
    public var security: PeerTransportSecurity
    /// The frame limits, the same on both directions so that nothing is sent a peer would refuse.
    public var limits: FrameLimits
    /// How much may wait for one peer while it is unreachable.
    public var outboundQueue: OutboundQueueLimits
    /// How long a TCP connect may take before the attempt counts as failed.
    public var connectTimeout: TimeAmount
    /// How long a new connection may take, from TCP accept/connect, to finish the TLS handshake
    /// and deliver the peer's ``Handshake``. Also bounds a slow-loris that sends nothing.
    public var handshakeTimeout: TimeAmount
    /// The pause between failed connection attempts to one peer.
    public var reconnectBackoff: ReconnectBackoff
    /// Inbound connections held at once, peers and not-yet-identified clients alike. A flood of
    /// connections to the cluster port is closed past this bound instead of exhausting file
    /// descriptors; real peers need one each.
    public var maxInboundConnections: Int

    public init(
        handshake: Handshake,
        security: PeerTransportSecurity,
        limits: FrameLimits = .default,
        outboundQueue: OutboundQueueLimits = .default,
        connectTimeout: TimeAmount = .seconds(2),
        handshakeTimeout: TimeAmount = .seconds(3),
        reconnectBackoff: ReconnectBackoff = .default,
        maxInboundConnections: Int = 1024
    ) {
        self.handshake = handshake
        self.security = security
        self.limits = limits
        self.outboundQueue = outboundQueue
        self.connectTimeout = connectTimeout
        self.handshakeTimeout = handshakeTimeout
        self.reconnectBackoff = reconnectBackoff
        self.maxInboundConnections = maxInboundConnections
    }
}

// MARK: - Security

/// How peer connections are protected.
///
/// An enum rather than an optional TLS setting, so that a missing value cannot silently mean
/// plaintext: the caller writes `.insecurePlaintext` only where the operator passed
/// `--insecure-plaintext`.
public enum PeerTransportSecurity: Sendable {
    /// Mutual TLS against the cluster CA (SPEC §4.8). `NIOSSLServerHandler` and
    /// `NIOSSLClientHandler` are the first handlers of every pipeline.
    case mutualTLS(PeerTransportTLS)
    /// No TLS at all: anyone who can reach the port can join. Only for `--insecure-plaintext`.
    case insecurePlaintext
}

/// The TLS contexts for both sides of a peer connection.
public struct PeerTransportTLS: Sendable {
    /// For connections this node accepts: must require and verify client certificates.
    public var serverContext: NIOSSLContext
    /// For connections this node dials: presents this node's certificate, verifies the server's.
    public var clientContext: NIOSSLContext
    /// When on, a peer whose certificate names a node (its CN) must claim that same name in its
    /// Roster handshake. Without it, any holder of a cluster certificate could speak as any node.
    /// A certificate without a CN is not checked. Certificates from `roster tls cert create --node
    /// NAME` carry NAME as CN, so this holds as long as `--node-name` matches the certificate.
    public var requireCertificateNameMatch: Bool

    public init(serverContext: NIOSSLContext, clientContext: NIOSSLContext, requireCertificateNameMatch: Bool = true) {
        self.serverContext = serverContext
        self.clientContext = clientContext
        self.requireCertificateNameMatch = requireCertificateNameMatch
    }

    /// Builds both contexts from the node's loaded TLS files.
    public init(material: PeerTLSMaterial, requireCertificateNameMatch: Bool = true) throws {
        self.init(
            serverContext: try material.serverContext(),
            clientContext: try material.clientContext(),
            requireCertificateNameMatch: requireCertificateNameMatch
        )
    }
}

// MARK: - Queue bound

/// The most that may wait, per peer, to be written. When a new payload would exceed either
/// bound, the *oldest* queued payloads are dropped (and reported): gossip is about the latest
/// state, and anti-entropy repairs whatever a dropped rumor carried, so stale messages are the
/// cheapest to lose. Memory never grows with the time a peer stays away.
public struct OutboundQueueLimits: Hashable, Sendable {
    /// The most payloads waiting for one peer.
    public var maxFrames: Int
    /// The most payload bytes waiting for one peer. A single payload larger than this is refused.
    public var maxBytes: Int

    /// 1,024 payloads or 32 MiB per peer, whichever is reached first.
    public static let `default` = OutboundQueueLimits(maxFrames: 1024, maxBytes: 32 * 1024 * 1024)

    public init(maxFrames: Int, maxBytes: Int) {
        precondition(maxFrames >= 1 && maxBytes >= 1, "an outbound queue must hold at least one payload")
        self.maxFrames = maxFrames
        self.maxBytes = maxBytes
    }
}

// MARK: - Backoff

/// Exponential backoff with jitter between connection attempts to one peer.
///
/// The n-th consecutive failure waits `initial × 2^(n-1)`, capped at `maximum`, then scaled by a
/// random factor in `1 - jitter ... 1 + jitter` (and capped again), so that nodes that lost the
/// same peer at the same moment do not all come back at the same instant.
public struct ReconnectBackoff: Hashable, Sendable {
    public var initial: TimeAmount
    public var maximum: TimeAmount
    /// The fraction by which a delay may randomly shrink or grow, in `0...1`.
    public var jitter: Double

    /// 100 ms doubling to 5 s, ±20 %.
    public static let `default` = ReconnectBackoff(initial: .milliseconds(100), maximum: .seconds(5), jitter: 0.2)

    public init(initial: TimeAmount, maximum: TimeAmount, jitter: Double) {
        precondition(initial.nanoseconds > 0 && maximum >= initial, "backoff needs 0 < initial <= maximum")
        precondition((0...1).contains(jitter), "jitter is a fraction in 0...1")
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
    }

    /// The pause after `failures` consecutive failures (`failures >= 1`). `random` is a value in
    /// `0...1`, injected so that tests can pin it.
    public func delay(afterFailures failures: Int, random: Double) -> TimeAmount {
        let exponent = min(max(failures, 1) - 1, 32)
        let base = min(Double(self.initial.nanoseconds) * Double(1 << exponent), Double(self.maximum.nanoseconds))
        let factor = 1 + self.jitter * (2 * min(max(random, 0), 1) - 1)
        let nanoseconds = min(base * factor, Double(self.maximum.nanoseconds))
        return .nanoseconds(Int64(nanoseconds.rounded()))
    }
}
