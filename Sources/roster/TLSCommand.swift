import ArgumentParser
import Foundation
import RosterNode

/// `roster tls`: the cluster's own certificate authority, so that mutual TLS between peers needs
/// no openssl recipes (SPEC §1).
struct TLSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls",
        abstract: "Create the cluster CA and node certificates for mutual TLS between peers.",
        discussion: """
            Typical use: 'roster tls ca create --dir certs' once per cluster, then \
            'roster tls cert create --dir certs --node NAME --ip ADDRESS' for every node. \
            Start each agent with --tls-ca certs/ca.pem --tls-cert certs/NAME.pem --tls-key certs/NAME-key.pem.
            """,
        subcommands: [CAGroup.self, CertGroup.self])

    /// `roster tls ca`
    struct CAGroup: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ca", abstract: "Manage the cluster certificate authority.", subcommands: [CreateCA.self])
    }

    /// `roster tls cert`
    struct CertGroup: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cert", abstract: "Manage node certificates.", subcommands: [CreateCert.self])
    }
}

// MARK: - roster tls ca create

/// `roster tls ca create --dir DIR`: writes `DIR/ca.pem` and `DIR/ca-key.pem`.
struct CreateCA: ParsableCommand, RunnableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a new cluster CA: DIR/ca.pem and DIR/ca-key.pem.",
        discussion: """
            The CA is ECDSA P-256, valid for 10 years. Existing files are never overwritten. \
            Keep ca-key.pem secret: whoever holds it can mint certificates that join the cluster.
            """)

    @Option(help: "Directory to write into; created if missing.") var dir: String

    func execute() async throws {
        try requireDirectory(dir)
        let files = try runTLS { try CertificateAuthority.create(inDirectory: dir) }
        print("Wrote CA certificate: \(files.certificatePath)")
        print("Wrote CA private key: \(files.keyPath) (mode 0600; keep it secret)")
        print("Next: roster tls cert create --dir \(dir) --node NAME [--ip IP]...")
    }
}

// MARK: - roster tls cert create

/// `roster tls cert create --dir DIR --node NAME [--ip IP]... [--dns NAME]...`.
struct CreateCert: ParsableCommand, RunnableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Issue a node certificate: DIR/NAME.pem and DIR/NAME-key.pem, signed by DIR/ca.pem.",
        discussion: """
            The certificate is valid for 2 years, for both server and client authentication. Its SANs \
            hold NAME, localhost, 127.0.0.1, and every --ip and --dns given: add the addresses other \
            peers use to reach this node. Existing files are never overwritten.
            """)

    @Option(help: "Directory holding ca.pem and ca-key.pem; the node files are written there too.") var dir: String
    @Option(help: "The node's name (its --node-name): the certificate's CN and a DNS SAN.") var node: String
    @Option(help: "An extra IP address SAN, IPv4 or IPv6; repeatable.") var ip: [String] = []
    @Option(help: "An extra DNS name SAN; repeatable.") var dns: [String] = []

    func execute() async throws {
        try requireDirectory(dir)
        let files = try runTLS {
            try CertificateAuthority.issueNodeCertificate(
                inDirectory: dir, nodeName: node, ipAddresses: ip, dnsNames: dns)
        }
        print("Wrote node certificate: \(files.certificatePath)")
        print("Wrote node private key: \(files.keyPath) (mode 0600)")
        let ca = (dir.hasSuffix("/") ? dir : dir + "/") + CertificateAuthority.certificateFileName
        print(
            "Use: roster agent --node-name \(node) --tls-ca \(ca) --tls-cert \(files.certificatePath) --tls-key \(files.keyPath)"
        )
    }
}

// MARK: - Error mapping

/// An empty `--dir` would write into the working directory by accident.
private func requireDirectory(_ dir: String) throws {
    if dir.isEmpty { throw ConfigError(key: "dir", message: "must name a directory, e.g. --dir certs") }
}

/// Bad arguments are usage errors (exit 2, naming the flag); anything about the files on disk is a
/// runtime failure (exit 1) whose message already names the file.
private func runTLS<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as TLSMaterialError {
        switch error {
        case .invalidIPAddress: throw ConfigError(key: "ip", message: error.description)
        case .invalidDNSName(_, let role):
            throw ConfigError(key: role == "node name" ? "node" : "dns", message: error.description)
        default:
            FileHandle.standardError.write(Data("roster: \(error)\n".utf8))
            throw ExitCode.failure
        }
    } catch {
        FileHandle.standardError.write(Data("roster: creating the certificate failed: \(error)\n".utf8))
        throw ExitCode.failure
    }
}
