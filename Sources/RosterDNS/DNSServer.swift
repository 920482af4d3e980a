import Logging
import NIOCore
import NIOPosix

/// Why the DNS interface could not be set up; each message names the setting at fault.
public enum DNSServerError: Error, CustomStringConvertible {
    case invalidDomain(String, DNSWireError)
    case invalidTTL(Int)
    case alreadyStarted
    /// UDP and TCP could not be bound to one common port.
    case noCommonPort(host: String, attempts: Int)

    public var description: String {
        switch self {
        case .invalidDomain(let domain, let error):
            "invalid DNS domain '\(domain)': \(error); expected a name such as 'roster.' or 'consul.example.'"
        case .invalidTTL(let ttl): "invalid DNS TTL \(ttl): expected 0 to \(UInt32.max) seconds"
        case .alreadyStarted: "the DNS server was already started; start it once"
        case .noCommonPort(let host, let attempts):
            "could not bind UDP and TCP to the same free port on \(host) in \(attempts) attempts; give --dns an explicit port"
        }
    }
}

/// The DNS interface: one UDP and one TCP listener on the same host and port, both answering
/// through one `DNSResolver`. Only a thin shell: every decision is the resolver's.
public final class DNSServer: Sendable {
    public let host: String
    public let port: Int
    public let resolver: DNSResolver
    private let group: any EventLoopGroup
    private let logger: Logger
    private let responder: DNSResponder
    private let channels = DNSLocked(Channels())

    /// How long a TCP connection may sit without a query before the server closes it.
    static let tcpIdleTimeout = TimeAmount.seconds(10)

    private struct Channels {
        var started = false
        var closed = false
        var listeners: [any Channel] = []
        var connections: [ObjectIdentifier: any Channel] = [:]
    }

    /// Validates the settings now, so that a bad `--domain` or `--dns-ttl` stops the agent at
    /// startup with a message rather than at the first query.
    public init(
        host: String, port: Int, domain: String = "roster.", ttl: Int = 0, dataSource: any DNSDataSource,
        eventLoopGroup: any EventLoopGroup, logger: Logger = Logger(label: "roster.dns")
    ) throws(DNSServerError) {
        let name: DNSName
        do {
            name = try DNSName(domain)
        } catch {
            throw .invalidDomain(domain, error)
        }
        guard let ttl = UInt32(exactly: ttl) else { throw .invalidTTL(ttl) }
        self.host = host
        self.port = port
        self.group = eventLoopGroup
        self.logger = logger
        self.resolver = DNSResolver(dataSource: dataSource, domain: name, ttl: ttl)
        self.responder = DNSResponder(resolver: resolver, logger: logger)
    }

    /// Binds UDP, then TCP on the port UDP got. With port 0 the kernel picks the UDP port, which
    /// may be taken for TCP, so that case retries a few times with a new pick.
    public func start() async throws -> (udpPort: Int, tcpPort: Int) {
        try channels.withLock { state in
            guard !state.started else { throw DNSServerError.alreadyStarted }
            state.started = true
        }
        let attempts = port == 0 ? 8 : 1
        for attempt in 1...attempts {
            let udp = try await bindUDP(port: port)
            let udpPort = udp.localAddress?.port ?? port
            do {
                let tcp = try await bindTCP(port: udpPort)
                let tcpPort = tcp.localAddress?.port ?? udpPort
                let closed = channels.withLock { state in
                    state.listeners += [udp, tcp]
                    return state.closed
                }
                if closed { await shutdown() }
                logger.notice("DNS interface listening on \(host):\(udpPort) (UDP and TCP), domain \(resolver.domain)")
                return (udpPort, tcpPort)
            } catch {
                try? await udp.close()
                if attempt == attempts {
                    if port == 0 { throw DNSServerError.noCommonPort(host: host, attempts: attempts) }
                    throw error
                }
            }
        }
        throw DNSServerError.noCommonPort(host: host, attempts: attempts)
    }

    /// Closes the listeners and every open TCP connection. Queries being answered finish, but
    /// their replies have nowhere to go.
    public func shutdown() async {
        let open = channels.withLock { state in
            state.closed = true
            defer {
                state.listeners = []
                state.connections = [:]
            }
            return state.listeners + Array(state.connections.values)
        }
        for channel in open { try? await channel.close() }
    }

    // MARK: - Binding

    private func bindUDP(port: Int) async throws -> any Channel {
        try await DatagramBootstrap(group: group)
            .channelInitializer { [responder] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DNSUDPHandler(responder: responder))
                }
            }
            .bind(host: host, port: port).get()
    }

    private func bindTCP(port: Int) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [responder, channels] channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: Self.tcpIdleTimeout))
                    try sync.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
                    try sync.addHandler(DNSTCPHandler(responder: responder))
                    Self.track(channel, in: channels)
                }
            }
            .bind(host: host, port: port).get()
    }

    /// Remembers an accepted connection until it closes, so that shutdown can close it too.
    private static func track(_ channel: any Channel, in channels: DNSLocked<Channels>) {
        let key = ObjectIdentifier(channel)
        let closed = channels.withLock { state in
            if !state.closed { state.connections[key] = channel }
            return state.closed
        }
        if closed {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { _ in
            _ = channels.withLock { $0.connections.removeValue(forKey: key) }
        }
    }
}
