import ArgumentParser
import Foundation
import RosterCore
import Yams

/// A `HOST:PORT` address as given on the command line or in the config file.
struct HostPort: Equatable, CustomStringConvertible {
    var host: String
    var port: Int

    /// Parses `127.0.0.1:8500`, `[::1]:8500` or `localhost:8500`; `key` names the flag in errors.
    init(parsing text: String, key: String) throws {
        var host: Substring
        let portText: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ConfigError(key: key, message: "'\(text)' needs a port, as in [::1]:8500") }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ConfigError(key: key, message: "'\(text)' is not HOST:PORT, e.g. 127.0.0.1:8500")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        if host.isEmpty { host = "0.0.0.0" }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigError(key: key, message: "'\(portText)' in '\(text)' is not a port from 0 to 65535")
        }
        self.host = String(host)
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A bad flag or config key: exits 2 with a message that names it.
struct ConfigError: Error, CustomStringConvertible {
    var key: String
    var message: String
    var description: String { "--\(key.replacingOccurrences(of: "_", with: "-")): \(message)" }
}

/// The agent's settings after merging defaults, the config file, and flags (flags win).
struct AgentConfig {
    var nodeName: String
    var dataDir: String
    var bind: HostPort
    var advertise: HostPort
    var http: HostPort
    var dns: HostPort
    var join: [String]
    var clusterID: String
    var datacenter: String
    var domain: String
    var tlsCA: String?
    var tlsCert: String?
    var tlsKey: String?
    var insecurePlaintext: Bool
    var logLevel: String
    var logFormat: String
    var dnsTTL: Int
    var tombstoneGrace: GoDuration

    /// Every key the config file may hold: the flag names with `-` written as `_`.
    static let fileKeys: Set<String> = [
        "node_name", "data_dir", "bind", "advertise", "http", "dns", "join", "cluster_id", "datacenter", "domain",
        "tls_ca", "tls_cert", "tls_key", "insecure_plaintext", "log_level", "log_format", "dns_ttl", "tombstone_grace",
    ]

    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Reads a YAML config file into key → value, refusing unknown keys by name.
    static func loadFile(_ path: String) throws -> [String: Any] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(key: "config", message: "cannot read '\(path)'")
        }
        let parsed: Any?
        do {
            parsed = try Yams.load(yaml: text)
        } catch {
            throw ConfigError(key: "config", message: "'\(path)' is not valid YAML: \(error)")
        }
        guard let parsed else { return [:] }
        guard let map = parsed as? [String: Any] else {
            throw ConfigError(key: "config", message: "'\(path)' must be a mapping of keys such as node_name: n1")
        }
        for key in map.keys where !fileKeys.contains(key) {
            let known = fileKeys.sorted().joined(separator: ", ")
            throw ConfigError(key: key, message: "unknown key '\(key)' in '\(path)'; known keys: \(known)")
        }
        return map
    }
}

/// Typed access to config-file values, with errors naming the key.
struct FileValues {
    var map: [String: Any]

    func string(_ key: String) throws -> String? {
        guard let value = map[key] else { return nil }
        if let s = value as? String { return s }
        if let i = value as? Int { return String(i) }
        throw ConfigError(key: key, message: "expected a string, got \(value)")
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = map[key] else { return nil }
        guard let b = value as? Bool else { throw ConfigError(key: key, message: "expected true or false, got \(value)") }
        return b
    }

    func int(_ key: String) throws -> Int? {
        guard let value = map[key] else { return nil }
        guard let i = value as? Int else { throw ConfigError(key: key, message: "expected a whole number, got \(value)") }
        return i
    }

    func strings(_ key: String) throws -> [String]? {
        guard let value = map[key] else { return nil }
        if let s = value as? String { return [s] }
        guard let list = value as? [Any], let strings = list as? [String] else {
            throw ConfigError(key: key, message: "expected a list of HOST:PORT strings")
        }
        return strings
    }
}
