import NIOCore
import NIOPosix
import NIOSSL
import RosterNode
import Testing

/// Real sockets on loopback, because what matters here (a missing or foreign client certificate
/// being refused) happens inside BoringSSL and the kernel, not in code we could call directly.
/// Every wait is on a future with a deadline; nothing sleeps.
@Suite struct PeerTLSLoopbackTests {
    @Test func twoNodesOfOneCAHandshakeAndExchangeBytes() async throws {
        let pki = try TestPKI()
        try await withLoopback(server: pki.node1) { connect in
            let (client, server) = try await connect(try pki.node2.clientContext(), "hello from n2")
            #expect(client == .echoed("hello from n2"))
            #expect(server == .received("hello from n2", peerNodeName: "n2"))
        }
    }

    @Test func aClientCertificateFromAnotherCAIsRefused() async throws {
        let pki = try TestPKI()
        // The rogue trusts the cluster CA, so it accepts the server: only the server's check can stop it.
        var rogue = pki.rogue.clientConfiguration()
        rogue.trustRoots = .certificates([pki.node1.caCertificate])
        try await withLoopback(server: pki.node1) { connect in
            let (client, server) = try await connect(try NIOSSLContext(configuration: rogue), "let me in")
            #expect(!client.wasEchoed)
            #expect(server.refusal?.contains("CERTIFICATE_VERIFY_FAILED") == true, "\(server)")
        }
    }

    @Test func aClientWithoutACertificateIsRefused() async throws {
        let pki = try TestPKI()
        var anonymous = pki.node2.clientConfiguration()
        anonymous.certificateChain = []
        anonymous.privateKey = nil
        try await withLoopback(server: pki.node1) { connect in
            let (client, server) = try await connect(try NIOSSLContext(configuration: anonymous), "let me in")
            #expect(!client.wasEchoed)
            #expect(server.refusal?.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") == true, "\(server)")
        }
    }

    @Test func aPlaintextClientIsDisconnected() async throws {
        let pki = try TestPKI()
        try await withLoopback(server: pki.node1) { connect in
            let (client, server) = try await connect(nil, "GET /v1/agent/members HTTP/1.1\r\n\r\n")
            guard case .closed = client else {
                Issue.record("plaintext client was not disconnected: \(client)")
                return
            }
            #expect(!client.wasEchoed)
            #expect(server.refusal?.contains("HTTP_REQUEST") == true, "\(server)")
        }
    }
}

// MARK: - Fixtures

/// One cluster CA with nodes n1 and n2, and a second CA with a look-alike "n1".
private struct TestPKI {
    let node1: PeerTLSMaterial
    let node2: PeerTLSMaterial
    let rogue: PeerTLSMaterial

    init() throws {
        let (cluster, other) = (try TLSScratch(), try TLSScratch())
        for (dir, nodes) in [(cluster, ["n1", "n2"]), (other, ["n1"])] {
            _ = try CertificateAuthority.create(inDirectory: dir.path)
            for node in nodes {
                _ = try CertificateAuthority.issueNodeCertificate(inDirectory: dir.path, nodeName: node)
            }
        }
        func load(_ dir: TLSScratch, _ node: String) throws -> PeerTLSMaterial {
            try PeerTLSMaterial.load(
                caPath: dir.file("ca.pem"), certPath: dir.file("\(node).pem"), keyPath: dir.file("\(node)-key.pem"))
        }
        (node1, node2, rogue) = (try load(cluster, "n1"), try load(cluster, "n2"), try load(other, "n1"))
    }
}

private enum ClientOutcome: Sendable, Equatable {
    case echoed(String)
    case closed(received: [UInt8], error: String?)

    var wasEchoed: Bool { if case .echoed = self { true } else { false } }
}

private enum ServerOutcome: Sendable, Equatable {
    case received(String, peerNodeName: String?)
    /// BoringSSL failed the handshake, so no application byte got through; BoringSSL's reason.
    case refused(String)
    case failed(String)
    case closedQuietly

    var refusal: String? { if case .refused(let reason) = self { reason } else { nil } }
}

private struct LoopbackTimeout: Error {}

/// Starts a server with `server.serverContext()` on an ephemeral loopback port, hands the body a
/// function that runs one client against it and returns both sides' outcomes, and always shuts
/// the event loop group down.
private func withLoopback(
    server material: PeerTLSMaterial,
    _ body: (_ connect: (NIOSSLContext?, String) async throws -> (ClientOutcome, ServerOutcome)) async throws -> Void
) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let serverContext = try material.serverContext()
    var result: Result<Void, any Error> = .success(())
    do {
        let serverOutcome = group.next().makePromise(of: ServerOutcome.self)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverContext))
                    try channel.pipeline.syncOperations.addHandler(ServerProbe(report: serverOutcome))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let address = try #require(server.localAddress)
        do {
            try await body { clientContext, payload in
                let clientOutcome = group.next().makePromise(of: ClientOutcome.self)
                let client = try await ClientBootstrap(group: group)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            if let clientContext {
                                try channel.pipeline.syncOperations.addHandler(
                                    try NIOSSLClientHandler(context: clientContext, serverHostname: nil))
                            }
                            try channel.pipeline.syncOperations.addHandler(
                                ClientProbe(payload: payload, report: clientOutcome))
                        }
                    }
                    .connect(to: address).get()
                defer { client.close(promise: nil) }
                return (try await outcome(of: clientOutcome), try await outcome(of: serverOutcome))
            }
        } catch {
            result = .failure(error)
        }
        try await server.close()
    } catch {
        result = .failure(error)
    }
    try await group.shutdownGracefully()
    try result.get()
}

/// The promise's value, or `LoopbackTimeout` after ten seconds, which no healthy run approaches.
private func outcome<T: Sendable>(of promise: EventLoopPromise<T>) async throws -> T {
    let deadline = promise.futureResult.eventLoop.scheduleTask(in: .seconds(10)) { promise.fail(LoopbackTimeout()) }
    promise.futureResult.whenComplete { _ in deadline.cancel() }
    return try await promise.futureResult.get()
}

// MARK: - Probes

/// Echoes whatever arrives and reports, once, what the server saw of the connection.
private final class ServerProbe: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let report: EventLoopPromise<ServerOutcome>
    private var error: (any Error)?
    private var reported = false

    init(report: EventLoopPromise<ServerOutcome>) { self.report = report }

    private func finish(_ outcome: ServerOutcome) {
        if !reported { report.succeed(outcome) }
        reported = true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Self.unwrapInboundIn(data)
        let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
        let peerName = tls?.peerCertificate.flatMap(PeerTLSMaterial.nodeName(ofPeerCertificate:))
        finish(.received(String(buffer: bytes), peerNodeName: peerName))
        context.writeAndFlush(Self.wrapOutboundOut(bytes), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.error = self.error ?? error
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch error {
        case .some(NIOSSLError.handshakeFailed(let reason)): finish(.refused(String(describing: reason)))
        case .some(let other): finish(.failed(String(describing: other)))
        case .none: finish(.closedQuietly)
        }
    }
}

/// Sends `payload` as soon as the connection is up (TLS holds it until the handshake is done)
/// and reports whether it came back or the connection closed first.
private final class ClientProbe: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let payload: String
    private let report: EventLoopPromise<ClientOutcome>
    private var received: [UInt8] = []
    private var error: (any Error)?
    private var reported = false

    init(payload: String, report: EventLoopPromise<ClientOutcome>) {
        self.payload = payload
        self.report = report
    }

    private func finish(_ outcome: ClientOutcome) {
        if !reported { report.succeed(outcome) }
        reported = true
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(string: payload)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += Self.unwrapInboundIn(data).readableBytesView
        if received == Array(payload.utf8) { finish(.echoed(payload)) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.error = self.error ?? error
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.closed(received: received, error: error.map { String(describing: $0) }))
    }
}
