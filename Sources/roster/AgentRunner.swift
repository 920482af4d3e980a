import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOPosix
import Prometheus
import RosterCore
import RosterDNS
import RosterHTTP
import RosterNode
import ServiceLifecycle

/// The product version reported by the API and `--version`.
let rosterVersion = "0.1.0"

/// Wires a node together from its config and runs it until SIGTERM or SIGINT.
struct AgentRunner {
    var config: AgentConfig
    /// Deletes the data directory on exit: `roster dev` keeps its state only for its lifetime.
    var ephemeral = false

    func run() async throws {
        LogSetup.bootstrap(format: config.logFormat, level: config.logLevel)
        let logger = {
            var logger = Logger(label: "roster")
            logger[metadataKey: "node"] = "\(config.nodeName)"
            return logger
        }()

        let prometheus = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: prometheus))

        let registry: Registry
        let generation: UInt64
        do {
            try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
            generation = try NodeGeneration.next(dataDir: config.dataDir, wallMillis: NodeClock.system.wallMillis())
            registry = try await Registry.open(
                nodeID: config.nodeName, dataDir: config.dataDir, generation: generation, logger: logger)
        } catch {
            logger.critical("cannot open the data directory \(config.dataDir): \(error)")
            throw ExitCode.failure
        }
        let cluster: ClusterNode
        do {
            cluster = try makeCluster(registry: registry, generation: generation, logger: logger)
        } catch {
            logger.critical("cannot set up the cluster: \(error)")
            throw ExitCode.failure
        }

        let dns: DNSServer
        do {
            let source = RegistryDNSDataSource(registry: registry) {
                await cluster.memberViews().filter { $0.state == .alive || $0.state == .suspect }.map { (name: $0.name, address: $0.address) }
            }
            dns = try DNSServer(
                host: config.dns.host, port: config.dns.port, domain: config.domain, ttl: config.dnsTTL, dataSource: source,
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "roster.dns"))
        } catch {
            logger.critical("cannot set up DNS on \(config.dns): \(error)")
            throw ExitCode.failure
        }

        let node = NodeInfo(
            name: config.nodeName, datacenter: config.datacenter, address: config.advertise.host,
            clusterPort: config.advertise.port, version: rosterVersion)
        let api = APIContext(
            registry: registry, node: node, members: { await cluster.memberViews() },
            clusterHealth: { await cluster.health() }, membershipVersion: { cluster.membershipVersion.value })
        let app = Application(
            router: HTTPAPI.router(api: api, prometheus: prometheus),
            configuration: .init(address: .hostname(config.http.host, port: config.http.port), serverName: "roster"),
            onServerRunning: { _ in
                logger.notice("HTTP API listening on http://\(config.http)")
            },
            logger: Logger(label: "roster.http"))

        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(
                        service: MaintenanceService(
                            registry: registry, tombstoneGrace: .milliseconds(config.tombstoneGrace.milliseconds), logger: logger)),
                    // Before the API, so it stops after it: the leave is announced once no more
                    // writes can come in, and the registry closes only after the leave.
                    .init(service: ClusterService(cluster: cluster)),
                    .init(
                        service: HealthMonitorService(
                            monitor: HealthMonitor(
                                registry: registry, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                                logger: Logger(label: "roster.health")))),
                    .init(service: app),
                    .init(service: DNSService(server: dns)),
                    // Last in, so first told of shutdown: it releases blocking queries, which would
                    // otherwise hold the HTTP server open for up to their whole wait.
                    .init(service: WaiterReleaseService(registry: registry)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                cancellationSignals: [],
                logger: logger))
        logger.info(
            "starting node",
            metadata: ["data_dir": "\(config.dataDir)", "http": "\(config.http)", "datacenter": "\(config.datacenter)"])
        do {
            try await group.run()
        } catch {
            logger.critical("node stopped on an error: \(error)")
            throw ExitCode.failure
        }
        if ephemeral { try? FileManager.default.removeItem(atPath: config.dataDir) }
        logger.notice("node stopped cleanly")
    }

    private func makeCluster(registry: Registry, generation: UInt64, logger: Logger) throws -> ClusterNode {
        let security: PeerTransportSecurity
        if let ca = config.tlsCA, let cert = config.tlsCert, let key = config.tlsKey {
            let material = try PeerTLSMaterial.load(caPath: ca, certPath: cert, keyPath: key)
            security = .mutualTLS(try PeerTransportTLS(material: material))
        } else {
            logger.warning("peer traffic is PLAINTEXT (--insecure-plaintext): anyone who can reach the cluster port can join")
            security = .insecurePlaintext
        }
        let configuration = ClusterConfiguration(
            nodeName: config.nodeName, clusterID: config.clusterID, advertise: config.advertise.description,
            bindHost: config.bind.host, bindPort: config.bind.port, seeds: config.join, security: security)
        return ClusterNode(
            configuration: configuration, generation: generation, registry: registry,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
    }
}

/// Runs the cluster: joins, gossips until shutdown, then announces a graceful leave.
struct ClusterService: Service {
    let cluster: ClusterNode

    func run() async throws {
        try await cluster.start()
        await cancelWhenGracefulShutdown { await cluster.runLoops() }
        await cluster.leave()
    }
}

extension ClusterNode {
    func health() -> ClusterHealth {
        let members = self.members
        return ClusterHealth(
            joined: hasJoined, caughtUp: caughtUp, liveMembers: members.filter(\.isLive).count, members: members.count)
    }

    /// Members as the HTTP API shows them.
    func memberViews() -> [MemberView] {
        members.map { member in
            let (host, port) = splitAddress(member.identity.address)
            let state: MemberView.State =
                switch member.state {
                case .alive: .alive
                case .suspect: .suspect
                case .failed: .failed
                case .left: .left
                }
            return MemberView(name: member.identity.name, address: host, port: port, state: state)
        }
    }
}

private func splitAddress(_ address: String) -> (String, Int) {
    guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
        return (address, 0)
    }
    return (String(address[..<colon]).trimmingCharacters(in: ["[", "]"]), port)
}

/// Runs the registry's upkeep (TTL expiry, snapshots) and, on shutdown, flushes and closes it.
struct MaintenanceService: Service {
    let registry: Registry
    let tombstoneGrace: Duration
    let logger: Logger

    func run() async throws {
        var tick = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            await registry.sweep()
            tick += 1
            if tick % 20 == 0 {
                await registry.collectTombstones(grace: tombstoneGrace)
                await registry.snapshotIfNeeded()
            }
        }
        await registry.close()
        logger.info("registry flushed and closed")
    }
}

/// Probes the HTTP and TCP checks this node owns until shutdown.
struct HealthMonitorService: Service {
    let monitor: HealthMonitor

    func run() async throws {
        await cancelWhenGracefulShutdown { await monitor.run() }
    }
}

/// Serves DNS over UDP and TCP until shutdown.
struct DNSService: Service {
    let server: DNSServer

    func run() async throws {
        _ = try await server.start()
        try? await gracefulShutdown()
        await server.shutdown()
    }
}

/// Ends every waiting blocking query as soon as shutdown begins.
struct WaiterReleaseService: Service {
    let registry: Registry

    func run() async throws {
        try? await gracefulShutdown()
        await registry.releaseWaiters()
    }
}
