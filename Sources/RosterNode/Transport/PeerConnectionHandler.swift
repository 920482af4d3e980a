import Logging
import NIOCore
import NIOSSL
import RosterWire

/// The last handler of every peer pipeline, inbound and outbound: runs the Roster handshake,
/// then delivers payloads, and turns every failure into "close this connection, report why".
///
/// Pipeline, head to tail: `[NIOSSLServerHandler | NIOSSLClientHandler]`,
/// `ByteToMessageHandler(FrameDecoder)`, ``PeerFrameWriter``, this handler.
///
/// Both sides send their ``Handshake`` as the first frame the moment TCP connects (NIOSSL holds
/// it back until TLS is up), then wait for the other's. Nothing else is read or written before
/// the remote's handshake is accepted, so a refused peer never sees or injects state.
final class PeerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Role: Sendable {
        case inbound
        /// `attempt` ties this connection to one connection attempt of `peer`, so that events
        /// of an old, abandoned attempt cannot disturb a newer one.
        case outbound(OutboundPeer, attempt: UInt64)
    }

    private enum State {
        case idle
        case awaitingHandshake
        case established(Handshake)
        case closing
    }

    private let transport: PeerTransport
    private let role: Role
    private var state: State = .idle
    private var address: String
    private var closeReason: String?
    private var wasActive = false
    /// The accepted remote, kept after `state` moves on to `.closing`, for `peerDisconnected`.
    private var acceptedRemote: Handshake?
    private var handshakeTimeout: Scheduled<Void>?

    init(transport: PeerTransport, role: Role) {
        self.transport = transport
        self.role = role
        switch role {
        case .inbound: self.address = "unknown"
        case .outbound(let peer, _): self.address = peer.address
        }
    }

    private var logger: Logger { self.transport.logger }
    private var delegate: any PeerTransportDelegate { self.transport.delegate }
    private var direction: String {
        if case .inbound = self.role { return "from" }
        return "to"
    }

    // MARK: - Lifecycle

    func channelActive(context: ChannelHandlerContext) {
        self.wasActive = true
        self.state = .awaitingHandshake
        if case .inbound = self.role {
            self.address = context.channel.remoteAddress?.peerDescription ?? "unknown"
            guard self.transport.inboundOpened(context.channel) else {
                self.state = .closing
                context.close(promise: nil)
                return
            }
        }
        do {
            let handshake = try self.transport.localHandshake.encoded(allocator: context.channel.allocator)
            context.writeAndFlush(Self.wrapOutboundOut(handshake), promise: nil)
        } catch {
            // Only reachable if this node's own name, cluster id or address is over 255 bytes;
            // `start` checks that, so this is a connection dialled before `start`.
            self.logger.error("cannot send this node's handshake, closing peer connection: \(error)")
            self.state = .closing
            context.close(promise: nil)
            return
        }
        let timeout = self.transport.configuration.handshakeTimeout
        self.handshakeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            let tlsPending: Bool
            if case .mutualTLS = self.transport.configuration.security {
                tlsPending = ((try? context.pipeline.syncOperations.nioSSL_tlsVersion()) ?? nil) == nil
            } else {
                tlsPending = false
            }
            let what = tlsPending ? "TLS handshake" : "Roster handshake"
            self.refuse(context, reason: "no \(what) within \(Self.describe(timeout))")
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.handshakeTimeout?.cancel()
        self.handshakeTimeout = nil
        let established: Bool
        let reason: String
        if let remote = self.acceptedRemote {
            established = true
            reason =
                self.closeReason
                ?? (self.transport.isShuttingDown ? "this node is shutting down" : "the peer closed the connection")
            self.logger.info(
                "peer connection \(self.direction) \(self.address) (node '\(remote.nodeName)') closed: \(reason)",
                metadata: ["peer.address": "\(self.address)", "peer.node": "\(remote.nodeName)"]
            )
            self.delegate.peerDisconnected(address: self.address, reason: reason)
        } else {
            established = false
            reason = self.closeReason ?? "the connection closed before the Roster handshake"
            if self.closeReason == nil, self.wasActive {
                self.logger.debug("peer connection \(self.direction) \(self.address) closed before the handshake")
            }
        }
        self.state = .closing
        if self.wasActive {
            switch self.role {
            case .inbound:
                self.transport.inboundClosed(context.channel)
            case .outbound(let peer, let attempt):
                peer.connectionClosed(attempt: attempt, wasEstablished: established, reason: reason)
            }
        }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .outbound(let peer, let attempt) = self.role, context.channel.isWritable {
            peer.channelBecameWritable(attempt: attempt)
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var payload = Self.unwrapInboundIn(data)
        switch self.state {
        case .established(let remote):
            self.delegate.received(payload, from: remote)
        case .awaitingHandshake:
            let remote: Handshake
            do {
                remote = try Handshake.decode(from: &payload)
            } catch {
                self.refuse(context, reason: "first frame is not a Roster handshake: \(Self.describe(error))")
                return
            }
            if let reason = self.rejection(of: remote, context: context) {
                self.refuse(context, reason: reason)
                return
            }
            self.handshakeTimeout?.cancel()
            self.handshakeTimeout = nil
            self.state = .established(remote)
            self.acceptedRemote = remote
            self.transport.counters.withLock { $0.connectionsAccepted += 1 }
            self.logger.info(
                "peer connection \(self.direction) \(self.address) accepted: node '\(remote.nodeName)' generation \(remote.generation) advertising \(remote.advertise)",
                metadata: ["peer.address": "\(self.address)", "peer.node": "\(remote.nodeName)"]
            )
            // The delegate hears of the peer before the first payload for it can be sent or read.
            self.delegate.peerConnected(remote, address: self.address)
            if case .outbound(let peer, let attempt) = self.role {
                peer.connectionEstablished(attempt: attempt, channel: context.channel)
            }
        case .idle, .closing:
            break
        }
    }

    /// Why `remote` must be refused, or `nil` to accept it.
    private func rejection(of remote: Handshake, context: ChannelHandlerContext) -> String? {
        let local = self.transport.localHandshake
        let verdict = Handshake.validate(remote: remote, localClusterID: local.clusterID, localNodeName: local.nodeName)
        if let reason = verdict.reason { return reason }
        guard case .mutualTLS(let tls) = self.transport.configuration.security, tls.requireCertificateNameMatch else {
            return nil
        }
        guard let certificate = (try? context.pipeline.syncOperations.nioSSL_peerCertificate()) ?? nil else {
            // Cannot happen with PeerTLSMaterial's server context, which requires a client
            // certificate; refusing keeps mutual TLS mutual should a context ever be built without.
            return "peer '\(remote.nodeName)' completed TLS without presenting a certificate; peers must "
                + "present a certificate from the cluster CA"
        }
        if let certified = PeerTLSMaterial.nodeName(ofPeerCertificate: certificate), certified != remote.nodeName {
            return "peer's certificate was issued to node '\(certified)' but its handshake claims the name "
                + "'\(remote.nodeName)'; start it with --node-name \(certified) or issue it a certificate "
                + "for '\(remote.nodeName)'"
        }
        return nil
    }

    // MARK: - Errors

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reason = Self.describe(error)
        switch self.state {
        case .idle:
            // Not connected yet: a failed connect is reported by the bootstrap's future instead.
            self.logger.debug("error on unconnected peer channel \(self.direction) \(self.address): \(reason)")
        case .awaitingHandshake:
            self.refuse(context, reason: reason)
        case .established(let remote):
            self.closeReason = reason
            let level: Logger.Level = error is WireError ? .warning : .info
            self.logger.log(
                level: level,
                "closing peer connection \(self.direction) \(self.address) (node '\(remote.nodeName)'): \(reason)",
                metadata: ["peer.address": "\(self.address)", "peer.node": "\(remote.nodeName)"]
            )
            self.state = .closing
            context.close(promise: nil)
        case .closing:
            self.logger.debug("error on closing peer connection \(self.direction) \(self.address): \(reason)")
        }
    }

    /// Closes this connection, and only this one, before the remote was accepted.
    private func refuse(_ context: ChannelHandlerContext, reason: String) {
        switch self.state {
        case .closing, .established:
            return
        case .idle, .awaitingHandshake:
            break
        }
        self.state = .closing
        self.closeReason = "refused: \(reason)"
        self.handshakeTimeout?.cancel()
        self.handshakeTimeout = nil
        self.transport.counters.withLock { $0.connectionsRefused += 1 }
        self.logger.warning(
            "refused peer connection \(self.direction) \(self.address): \(reason)",
            metadata: ["peer.address": "\(self.address)", "peer.refused": "\(reason)"]
        )
        self.delegate.refused(address: self.address, reason: reason)
        context.close(promise: nil)
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as WireError:
            return error.message
        case NIOSSLError.handshakeFailed(let inner):
            return "TLS handshake failed: \(inner)"
        case let error as NIOSSLError:
            return "TLS error: \(error)"
        case let error as BoringSSLError:
            return "TLS error: \(error)"
        default:
            return "\(error)"
        }
    }

    static func describe(_ amount: TimeAmount) -> String {
        let milliseconds = amount.nanoseconds / 1_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }
}
