import ArgumentParser
import Foundation
import RosterCore

/// `roster agent`: runs a node.
struct AgentCommand: ParsableCommand, RunnableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run a Roster node.",
        discussion: """
            Every flag is also a key of the YAML config file given with --config: the flag's name \
            without the dashes, with '-' written as '_' (for example node_name: n1, join: [127.0.0.1:8302]). \
            Flags override the file.

            Peer traffic is mutual TLS (--tls-ca, --tls-cert, --tls-key). Without TLS files the agent \
            refuses to start unless --insecure-plaintext is given.
            """)

    @OptionGroup var options: AgentOptions

    func execute() async throws {
        let config = try options.resolve()
        try await AgentRunner(config: config).run()
    }
}

/// The flags of `roster agent`. All are optional here so that a flag left out can fall back to
/// the config file, then to the default shown in the help.
struct AgentOptions: ParsableArguments {
    @Option(help: "A YAML config file; its keys are the flag names with '_' for '-'.") var config: String?
    @Option(help: "Unique name of this node in the cluster. (default: the host name)") var nodeName: String?
    @Option(help: "Directory where the node persists its state. (required)") var dataDir: String?
    @Option(help: "Cluster (peer) listener HOST:PORT. (default: 0.0.0.0:8301)") var bind: String?
    @Option(help: "Address peers dial, HOST:PORT. (default: the bind address)") var advertise: String?
    @Option(help: "HTTP API listener HOST:PORT. (default: 127.0.0.1:8500)") var http: String?
    @Option(help: "DNS listener HOST:PORT, UDP and TCP. (default: 127.0.0.1:8600)") var dns: String?
    @Option(help: "Seed peer HOST:PORT; repeatable.") var join: [String] = []
    @Option(help: "Nodes of another cluster id are refused. (default: roster)") var clusterId: String?
    @Option(help: "Datacenter reported through the Consul-compatible API. (default: dc1)") var datacenter: String?
    @Option(help: "DNS domain. (default: roster.)") var domain: String?
    @Option(help: "TTL of DNS answers in seconds. (default: 0)") var dnsTtl: Int?
    @Option(help: "How long deregistrations are remembered before their tombstones are dropped, e.g. 24h. (default: 24h)")
    var tombstoneGrace: String?
    @Option(help: "CA certificate (PEM) that peer certificates must chain to.") var tlsCa: String?
    @Option(help: "This node's certificate (PEM).") var tlsCert: String?
    @Option(help: "This node's private key (PEM).") var tlsKey: String?
    @Flag(help: "Allow peer traffic without TLS. Only for development.") var insecurePlaintext = false
    @Option(help: "trace, debug, info, notice, warning, error or critical. (default: info)") var logLevel: String?
    @Option(help: "text or json. (default: text)") var logFormat: String?

    func resolve() throws -> AgentConfig {
        let file = FileValues(map: try config.map(AgentConfig.loadFile) ?? [:])
        func pick(_ flag: String?, _ key: String) throws -> String? { try flag ?? file.string(key) }

        guard let dataDir = try pick(dataDir, "data_dir"), !dataDir.isEmpty else {
            throw ConfigError(key: "data-dir", message: "is required: the directory where the node keeps its state")
        }
        let bind = try HostPort(parsing: pick(bind, "bind") ?? "0.0.0.0:8301", key: "bind")
        let advertise = try pick(advertise, "advertise").map { try HostPort(parsing: $0, key: "advertise") }
            ?? HostPort(parsing: "\(bind.host == "0.0.0.0" ? "127.0.0.1" : bind.host):\(bind.port)", key: "bind")
        let joins = join.isEmpty ? (try file.strings("join") ?? []) : join
        for seed in joins { _ = try HostPort(parsing: seed, key: "join") }
        let logLevel = try pick(logLevel, "log_level") ?? "info"
        guard AgentConfig.logLevels.contains(logLevel) else {
            throw ConfigError(key: "log-level", message: "'\(logLevel)' is not one of \(AgentConfig.logLevels.joined(separator: ", "))")
        }
        let logFormat = try pick(logFormat, "log_format") ?? "text"
        guard ["text", "json"].contains(logFormat) else {
            throw ConfigError(key: "log-format", message: "'\(logFormat)' is not text or json")
        }
        let resolved = AgentConfig(
            nodeName: try pick(nodeName, "node_name") ?? ProcessInfo.processInfo.hostName,
            dataDir: dataDir, bind: bind, advertise: advertise,
            http: try HostPort(parsing: pick(http, "http") ?? "127.0.0.1:8500", key: "http"),
            dns: try HostPort(parsing: pick(dns, "dns") ?? "127.0.0.1:8600", key: "dns"),
            join: joins, clusterID: try pick(clusterId, "cluster_id") ?? "roster",
            datacenter: try pick(datacenter, "datacenter") ?? "dc1", domain: try pick(domain, "domain") ?? "roster.",
            tlsCA: try pick(tlsCa, "tls_ca"), tlsCert: try pick(tlsCert, "tls_cert"), tlsKey: try pick(tlsKey, "tls_key"),
            insecurePlaintext: try insecurePlaintext || (file.bool("insecure_plaintext") ?? false),
            logLevel: logLevel, logFormat: logFormat, dnsTTL: try dnsTtl ?? file.int("dns_ttl") ?? 0,
            tombstoneGrace: try parseDuration(pick(tombstoneGrace, "tombstone_grace") ?? "24h", key: "tombstone-grace"))
        try resolved.validate()
        return resolved
    }
}

private func parseDuration(_ text: String, key: String) throws -> GoDuration {
    guard let duration = GoDuration(parsing: text), duration.milliseconds >= 1000 else {
        throw ConfigError(key: key, message: "'\(text)' is not a duration of at least 1s, such as 30m or 24h")
    }
    return duration
}

extension AgentConfig {
    func validate() throws {
        guard !nodeName.isEmpty, nodeName.utf8.count <= 63,
            nodeName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        else {
            throw ConfigError(key: "node-name", message: "'\(nodeName)' must be 1 to 63 letters, digits, '-' or '_'")
        }
        let tlsFiles = [("tls-ca", tlsCA), ("tls-cert", tlsCert), ("tls-key", tlsKey)]
        let given = tlsFiles.filter { $0.1 != nil }
        if !given.isEmpty && given.count < 3 {
            let missing = tlsFiles.filter { $0.1 == nil }.map { "--\($0.0)" }.joined(separator: ", ")
            throw ConfigError(key: given[0].0, message: "mutual TLS needs all three files; missing \(missing)")
        }
        for (key, path) in given where !FileManager.default.isReadableFile(atPath: path!) {
            throw ConfigError(key: key, message: "cannot read '\(path!)'")
        }
        if given.isEmpty && !insecurePlaintext {
            throw ConfigError(
                key: "tls-ca",
                message: "peer traffic must be mutual TLS: give --tls-ca, --tls-cert and --tls-key "
                    + "(make them with 'roster tls ca create' and 'roster tls cert create'), "
                    + "or pass --insecure-plaintext for a development node")
        }
        guard dnsTTL >= 0 else { throw ConfigError(key: "dns-ttl", message: "must not be negative") }
    }
}
