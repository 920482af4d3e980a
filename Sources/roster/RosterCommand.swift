import ArgumentParser
import Foundation

/// The `roster` command.
struct RosterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roster",
        abstract: "A peer-to-peer, leaderless service registry with a Consul-compatible API.",
        discussion: """
            Start a development node with 'roster dev', or a real one with 'roster agent --data-dir DIR'. \
            Register and discover services over HTTP (Consul's /v1 API or the native /registry API).
            """,
        version: rosterVersion,
        subcommands: [AgentCommand.self, DevCommand.self, TLSCommand.self, MembersCommand.self, ServicesCommand.self])
}

/// `roster dev`: a throwaway single node with everything on loopback.
struct DevCommand: ParsableCommand, RunnableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run one development node: loopback ports, plaintext, state discarded on exit.",
        discussion: """
            The node listens on 127.0.0.1:8500 (HTTP) and keeps its state in a temporary directory \
            that is removed when it stops, so every 'roster dev' starts empty.
            """)

    @Option(help: "HTTP API listener HOST:PORT.") var http = "127.0.0.1:8500"

    func execute() async throws {
        let dataDir = NSTemporaryDirectory() + "roster-dev-\(ProcessInfo.processInfo.processIdentifier)"
        var options = try AgentOptions.parse([
            "--node-name", "dev", "--data-dir", dataDir, "--http", http, "--bind", "127.0.0.1:8301",
            "--dns", "127.0.0.1:8600", "--insecure-plaintext",
        ])
        options.logLevel = "info"
        print("roster dev: HTTP API on http://\(http), state in \(dataDir) (removed on exit)")
        try await AgentRunner(config: try options.resolve(), ephemeral: true).run()
    }
}

/// `roster members`: the cluster's members as a table.
struct MembersCommand: ParsableCommand, RunnableCommand {
    static let configuration = CommandConfiguration(commandName: "members", abstract: "List the cluster's members and their states.")
    @Option(help: "The HTTP API of any node.") var http = "127.0.0.1:8500"

    func execute() async throws {
        let address = try HostPort(parsing: http, key: "http")
        let members = try SimpleHTTP.getJSON(address, path: "/v1/agent/members") as? [[String: Any]] ?? []
        let states = [1: "alive", 2: "leaving", 3: "left", 4: "failed"]
        let rows = members.map { m in
            [
                m["Name"] as? String ?? "?", "\(m["Addr"] as? String ?? "?"):\(m["Port"] as? Int ?? 0)",
                states[m["Status"] as? Int ?? 0] ?? "unknown", (m["Tags"] as? [String: String])?["dc"] ?? "",
            ]
        }
        print(Table.render(header: ["NODE", "ADDRESS", "STATUS", "DC"], rows: rows.sorted { $0[0] < $1[0] }))
    }
}

/// `roster services`: services with instance counts and health.
struct ServicesCommand: ParsableCommand, RunnableCommand {
    static let configuration = CommandConfiguration(commandName: "services", abstract: "List services, instance counts and health.")
    @Option(help: "The HTTP API of any node.") var http = "127.0.0.1:8500"

    func execute() async throws {
        let address = try HostPort(parsing: http, key: "http")
        let body = try SimpleHTTP.getJSON(address, path: "/registry/services") as? [String: Any]
        let services = body?["services"] as? [String: [[String: Any]]] ?? [:]
        let rows = services.keys.sorted().map { name -> [String] in
            let instances = services[name] ?? []
            let healthy = instances.filter { i in
                let critical = (i["checks"] as? [[String: Any]] ?? []).contains { $0["status"] as? String == "critical" }
                return i["status"] as? String == "RUNNING" && !critical
            }.count
            let tags = Set(instances.flatMap { $0["tags"] as? [String] ?? [] }).sorted().joined(separator: ",")
            return [name, "\(instances.count)", "\(healthy)", "\(instances.count - healthy)", tags]
        }
        print(Table.render(header: ["SERVICE", "INSTANCES", "HEALTHY", "UNHEALTHY", "TAGS"], rows: rows))
    }
}

/// Fixed-width text tables for the CLI.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }
}
