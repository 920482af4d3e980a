import NIOCore
import NIOPosix
import NIOSSL
import RosterWire

// The only part of the transport that needs NIOPosix: making sockets. Everything it installs in a
// pipeline is NIOCore (and NIOSSL) code, so it could be driven by EmbeddedChannel as well.

extension PeerTransport {
    func bindListener(host: String, port: Int) async throws -> any Channel {
        try await ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.configurePipeline(channel, role: .inbound)
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    func connect(_ peer: OutboundPeer, attempt: UInt64) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: peer.eventLoop)
            .connectTimeout(self.configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.configurePipeline(channel, role: .outbound(peer, attempt: attempt))
                }
            }
            .connect(host: peer.target.host, port: peer.target.port)
    }
}

extension PeerTransport {
    /// TLS first (so nothing, not even the handshake frame, travels outside it), then the frame
    /// codec, then the handshake and delivery logic.
    func configurePipeline(_ channel: any Channel, role: PeerConnectionHandler.Role) throws {
        let pipeline = channel.pipeline.syncOperations
        if case .mutualTLS(let tls) = self.configuration.security {
            switch role {
            case .inbound:
                try pipeline.addHandler(NIOSSLServerHandler(context: tls.serverContext))
            case .outbound:
                // No hostname: membership is proven by the CA chain and the certificate's CN
                // (see PeerTLSMaterial and PeerTransportTLS.requireCertificateNameMatch).
                try pipeline.addHandler(NIOSSLClientHandler(context: tls.clientContext, serverHostname: nil))
            }
        }
        let counters = self.counters
        let decoder = FrameDecoder(limits: self.configuration.limits) { stats in
            counters.withLock {
                $0.framesReceived += 1
                $0.payloadBytesReceived += stats.payloadBytes
                $0.wireBytesReceived += stats.wireBytes
            }
        }
        let encoder = FrameEncoder(limits: self.configuration.limits) { stats in
            counters.withLock {
                $0.framesSent += 1
                $0.payloadBytesSent += stats.payloadBytes
                $0.wireBytesSent += stats.wireBytes
            }
        }
        let address: String
        switch role {
        case .inbound: address = channel.remoteAddress?.peerDescription ?? "unknown"
        case .outbound(let peer, _): address = peer.address
        }
        try pipeline.addHandler(ByteToMessageHandler(decoder))
        try pipeline.addHandler(
            PeerFrameWriter(encoder: encoder) { payloadBytes, error in
                self.reportDropped(
                    1,
                    address: address,
                    reason:
                        "payload of \(payloadBytes) bytes cannot be framed: \(PeerConnectionHandler.describe(error))",
                    level: .error
                )
            }
        )
        try pipeline.addHandler(PeerConnectionHandler(transport: self, role: role))
    }
}
