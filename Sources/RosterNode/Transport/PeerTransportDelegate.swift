import NIOCore
import RosterWire

/// What a ``PeerTransport`` reports to the layer above it (gossip, membership).
///
/// Every callback runs on the event loop of the connection concerned, so it must be quick and
/// must not block: hand the work to an actor or a stream. For one connection, callbacks come in
/// order: `peerConnected`, then each `received` in the order the peer sent them, then
/// `peerDisconnected`.
///
/// The transport keeps a strong reference to its delegate until it is deallocated.
public protocol PeerTransportDelegate: Sendable {
    /// A connection finished both handshakes and the remote was accepted. `address` is the
    /// `host:port` this node dialled for an outbound connection, or the remote's socket address
    /// (an ephemeral port) for an inbound one; `remote.advertise` is where the peer can be dialled.
    func peerConnected(_ remote: Handshake, address: String)

    /// An accepted connection ended. `reason` says who closed it and why.
    func peerDisconnected(address: String, reason: String)

    /// A payload arrived from an accepted peer. Payloads on one connection arrive in order.
    func received(_ payload: ByteBuffer, from remote: Handshake)

    /// This node refused a connection before accepting the remote: a failed TLS handshake, a
    /// handshake from another cluster, another protocol version or with this node's own name,
    /// bytes that are not a Roster handshake, or no handshake in time. The same reason is logged
    /// as a warning.
    func refused(address: String, reason: String)

    /// Payloads for `address` were thrown away: the oldest ones because the peer's outbound
    /// queue was full, or a payload that can never be sent (see ``PeerTransport/send(_:to:)``).
    /// The default does nothing; the count is also in ``PeerTransport/statistics``.
    func dropped(frames: Int, address: String)
}

extension PeerTransportDelegate {
    public func dropped(frames: Int, address: String) {}
}

/// Cumulative counters of one transport, for metrics. Handshake frames are counted too.
public struct PeerTransportStatistics: Hashable, Sendable {
    /// Frames written to peers, and their payload and on-the-wire bytes.
    public var framesSent = 0
    public var payloadBytesSent = 0
    public var wireBytesSent = 0
    /// Frames read from peers, and their payload (after decompression) and on-the-wire bytes.
    public var framesReceived = 0
    public var payloadBytesReceived = 0
    public var wireBytesReceived = 0
    /// Payloads thrown away because a queue was full or they could not be sent.
    public var framesDropped = 0
    /// Connections refused (see ``PeerTransportDelegate/refused(address:reason:)``).
    public var connectionsRefused = 0
    /// Connections that passed the handshake, in both directions.
    public var connectionsAccepted = 0

    public init() {}
}
