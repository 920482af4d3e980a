import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import RosterCore
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
        do {
            registry = try await Registry.open(nodeID: config.nodeName, dataDir: config.dataDir, logger: logger)
        } catch {
            logger.critical("cannot open the data directory \(config.dataDir): \(error)")
            throw ExitCode.failure
        }
        reportInactiveFeatures(logger)

        let node = NodeInfo(
            name: config.nodeName, datacenter: config.datacenter, address: config.advertise.host,
            clusterPort: config.advertise.port, version: rosterVersion)
        let api = APIContext(registry: registry, node: node)
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
                    .init(service: MaintenanceService(registry: registry, logger: logger)),
                    .init(service: app),
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

    /// The cluster and DNS arrive in later releases; say so rather than silently ignoring flags.
    private func reportInactiveFeatures(_ logger: Logger) {
        var inactive: Logger.Metadata = ["bind": "\(config.bind)", "advertise": "\(config.advertise)"]
        if !config.join.isEmpty { inactive["join"] = "\(config.join.joined(separator: ","))" }
        if config.tlsCA != nil { inactive["tls"] = "configured" }
        logger.warning("peer replication is not yet active in this build: this node runs alone", metadata: inactive)
        logger.warning("the DNS interface is not yet active in this build", metadata: ["dns": "\(config.dns)"])
    }
}

/// Runs the registry's upkeep (TTL expiry, snapshots) and, on shutdown, flushes and closes it.
struct MaintenanceService: Service {
    let registry: Registry
    let logger: Logger

    func run() async throws {
        var tick = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            await registry.sweep()
            tick += 1
            if tick % 20 == 0 { await registry.snapshotIfNeeded() }
        }
        await registry.close()
        logger.info("registry flushed and closed")
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
