import Crypto
import Foundation
import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The cluster's private certificate authority, behind `roster tls ca create` and
/// `roster tls cert create`.
///
/// Peers trust each other only because their certificates chain to this CA (SPEC §4.8), so the CA is
/// the cluster's membership credential: whoever holds `ca-key.pem` can mint nodes. Everything is
/// ECDSA P-256, which every TLS stack accepts and which keeps handshakes cheap on busy gossip links.
///
/// The in-memory half (`generate`, `issue`) is separate from the file half (`create(inDirectory:)`,
/// `issueNodeCertificate(inDirectory:...)`) so tests can mint certificates without touching disk.
public struct CertificateAuthority: Sendable {
    /// The self-signed CA certificate that peers use as their only trust root.
    public let certificate: Certificate
    let privateKey: Certificate.PrivateKey

    /// `DIR/ca.pem`: the file name the CLI and `make run` agree on.
    public static let certificateFileName = "ca.pem"
    /// `DIR/ca-key.pem`, written with mode 0600.
    public static let keyFileName = "ca-key.pem"

    /// Ten years: a CA outliving its nodes means rotating node certificates never needs a new CA.
    static let caLifetime: TimeInterval = 3_652 * 86_400
    /// Two years: long enough not to expire under a running cluster, short enough to age out leaks.
    static let nodeLifetime: TimeInterval = 730 * 86_400
    /// Certificates start five minutes in the past, so a peer whose clock is a little behind does
    /// not reject a certificate that was issued a moment ago.
    static let clockSkewAllowance: TimeInterval = 300

    // MARK: - In memory

    /// A fresh CA with a random subject suffix, so that two clusters' CAs are never confused in logs
    /// or in `openssl x509 -text` output even though both are "Roster CA".
    public static func generate(now: Date = Date()) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let suffix = (0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let name = try DistinguishedName { CommonName("Roster CA \(suffix)") }
        let extensions = try Certificate.Extensions {
            // Path length 0: this CA signs nodes directly and can never delegate to an intermediate.
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: publicKey)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: now - clockSkewAllowance, notValidAfter: now + caLifetime,
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions, issuerPrivateKey: .init(key))
        return CertificateAuthority(certificate: certificate, privateKey: .init(key))
    }

    /// Loads and checks a CA pair: a CA whose key does not match, or that cannot sign, would
    /// otherwise only show up as handshake failures on every peer.
    public static func load(certificatePath: String, keyPath: String) throws(TLSMaterialError) -> CertificateAuthority {
        let certificate = try loadCertificate(certificatePath, role: "CA certificate")
        let keyText = try PEMFiles.read(keyPath, role: "CA key")
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: keyText)
        } catch {
            throw .invalidContents(path: keyPath, role: "CA key", reason: "not a PEM private key (\(error))")
        }
        guard key.publicKey == certificate.publicKey else {
            throw .keyDoesNotMatchCertificate(keyPath: keyPath, certificatePath: certificatePath)
        }
        let isCA: Bool
        switch try? certificate.extensions.basicConstraints {
        case .some(.isCertificateAuthority): isCA = (try? certificate.extensions.keyUsage)?.keyCertSign ?? false
        default: isCA = false
        }
        guard isCA else { throw .notACertificateAuthority(path: certificatePath) }
        return CertificateAuthority(certificate: certificate, privateKey: key)
    }

    /// Signs a certificate for one node, usable on both sides of mutual TLS (serverAuth and
    /// clientAuth), since every peer both dials and accepts.
    ///
    /// The SANs always hold the node name, `localhost` and `127.0.0.1` so that a loopback cluster
    /// works with hostname verification on; `ipAddresses` and `dnsNames` add the addresses that other
    /// peers dial. The certificate never outlives the CA.
    public func issue(
        nodeName: String, ipAddresses: [String] = [], dnsNames: [String] = [], now: Date = Date()
    ) throws -> IssuedCertificate {
        try SANParsing.validateDNSName(nodeName, role: "node name")
        for name in dnsNames { try SANParsing.validateDNSName(name, role: "SAN") }
        var names: [GeneralName] = []
        for dns in [nodeName, "localhost"] + dnsNames where !names.contains(.dnsName(dns)) {
            names.append(.dnsName(dns))
        }
        for ip in ["127.0.0.1"] + ipAddresses {
            let name = GeneralName.ipAddress(.init(contentBytes: ArraySlice(try SANParsing.ipAddressBytes(ip))))
            if !names.contains(name) { names.append(name) }
        }

        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let caKeyID =
            (try? certificate.extensions.subjectKeyIdentifier)?.keyIdentifier
            ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectAlternativeNames(names)
            SubjectKeyIdentifier(hash: publicKey)
            AuthorityKeyIdentifier(keyIdentifier: caKeyID)
        }
        let nodeCertificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: now - Self.clockSkewAllowance,
            notValidAfter: min(now + Self.nodeLifetime, certificate.notValidAfter),
            issuer: certificate.subject, subject: try DistinguishedName { CommonName(nodeName) },
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: privateKey)
        return IssuedCertificate(certificate: nodeCertificate, privateKey: .init(key))
    }

    /// The CA pair as PEM text, certificate first.
    public func pem() throws -> (certificate: String, privateKey: String) {
        (try certificate.serializeAsPEM().pemString, try privateKey.serializeAsPEM().pemString)
    }

    static func loadCertificate(_ path: String, role: String) throws(TLSMaterialError) -> Certificate {
        let text = try PEMFiles.read(path, role: role)
        do {
            return try Certificate(pemEncoded: text)
        } catch {
            throw .invalidContents(path: path, role: role, reason: "not a single PEM certificate (\(error))")
        }
    }
}

/// A node certificate with its freshly generated private key. The key never leaves this value
/// except through `pem()`, which is what gets written to `NAME-key.pem`.
public struct IssuedCertificate: Sendable {
    /// The signed node certificate.
    public let certificate: Certificate
    let privateKey: Certificate.PrivateKey

    /// The pair as PEM text, certificate first.
    public func pem() throws -> (certificate: String, privateKey: String) {
        (try certificate.serializeAsPEM().pemString, try privateKey.serializeAsPEM().pemString)
    }
}

/// The paths a `roster tls` command wrote, for it to print.
public struct WrittenTLSFiles: Sendable, Equatable {
    public let certificatePath: String
    public let keyPath: String
}

// MARK: - On disk

extension CertificateAuthority {
    /// Writes a new CA to `DIR/ca.pem` and `DIR/ca-key.pem` (0600), creating `DIR` if needed.
    ///
    /// Refuses if either file exists: a new CA would silently orphan every node certificate issued
    /// by the old one.
    public static func create(inDirectory directory: String, now: Date = Date()) throws -> WrittenTLSFiles {
        let files = WrittenTLSFiles(
            certificatePath: PEMFiles.join(directory, certificateFileName),
            keyPath: PEMFiles.join(directory, keyFileName))
        try PEMFiles.requireAbsent([(files.certificatePath, "CA certificate"), (files.keyPath, "CA key")])
        let pem = try generate(now: now).pem()
        try writePair(pem, to: files, directory: directory, role: "CA")
        return files
    }

    /// Issues `DIR/NAME.pem` and `DIR/NAME-key.pem` (0600) signed by the CA in `DIR`.
    ///
    /// Arguments are checked before the CA is read, and the CA before anything is written, so a
    /// mistake never leaves a stray key behind.
    public static func issueNodeCertificate(
        inDirectory directory: String, nodeName: String, ipAddresses: [String] = [], dnsNames: [String] = [],
        now: Date = Date()
    ) throws -> WrittenTLSFiles {
        try SANParsing.validateDNSName(nodeName, role: "node name")
        for name in dnsNames { try SANParsing.validateDNSName(name, role: "SAN") }
        for ip in ipAddresses { _ = try SANParsing.ipAddressBytes(ip) }

        let files = WrittenTLSFiles(
            certificatePath: PEMFiles.join(directory, "\(nodeName).pem"),
            keyPath: PEMFiles.join(directory, "\(nodeName)-key.pem"))
        try PEMFiles.requireAbsent([(files.certificatePath, "node certificate"), (files.keyPath, "node key")])
        let caPath = PEMFiles.join(directory, certificateFileName)
        let ca = try load(certificatePath: caPath, keyPath: PEMFiles.join(directory, keyFileName))
        guard ca.certificate.notValidBefore <= now + clockSkewAllowance, now < ca.certificate.notValidAfter else {
            throw TLSMaterialError.outsideValidity(
                path: caPath, role: "CA certificate", notBefore: ca.certificate.notValidBefore,
                notAfter: ca.certificate.notValidAfter)
        }
        let pem = try ca.issue(nodeName: nodeName, ipAddresses: ipAddresses, dnsNames: dnsNames, now: now).pem()
        try writePair(pem, to: files, directory: directory, role: "node")
        return files
    }

    /// Key first, then certificate; if the certificate cannot be written the key is removed, so
    /// the directory holds either a whole pair or nothing new.
    private static func writePair(
        _ pem: (certificate: String, privateKey: String), to files: WrittenTLSFiles, directory: String, role: String
    ) throws(TLSMaterialError) {
        try PEMFiles.makeDirectory(directory)
        try PEMFiles.writeNew(files.keyPath, pem.privateKey, mode: 0o600, role: "\(role) key")
        do {
            try PEMFiles.writeNew(files.certificatePath, pem.certificate, mode: 0o644, role: "\(role) certificate")
        } catch {
            unlink(files.keyPath)
            throw error
        }
    }
}
