import Foundation
import NIOSSL
import X509

/// A node's peer-TLS files (`--tls-ca`, `--tls-cert`, `--tls-key`), loaded, cross-checked, and
/// turned into NIOSSL contexts for mutual TLS between peers (SPEC §4.8).
///
/// ## Why no hostname verification, on either side
///
/// Both contexts verify the peer's chain against the cluster CA **only** (the system trust store is
/// replaced, not extended), require TLS 1.3, and use `.noHostnameVerification`:
///
/// - The trust boundary is the private cluster CA. Only whoever holds `ca-key.pem` can mint a
///   certificate, so a chain to it *is* proof of membership, which is exactly SPEC §4.8's rule.
/// - Peers dial whatever `--join` / `--advertise` says: raw IPs, Docker service names, NAT'd
///   addresses. Requiring each of those in the SANs would turn an addressing change into a silent
///   partition, while adding no protection against anyone who lacks the CA key.
/// - A server cannot check a hostname for its clients anyway, and both directions should accept
///   the same set of peers, or gossip would become asymmetric.
/// - Which member a peer *is* is bound one layer up: the cluster transport compares the node name
///   claimed in the Roster handshake with `nodeName(ofPeerCertificate:)`, the certificate's CN.
///
/// A caller that wants SAN checking anyway can take `clientConfiguration()`, set
/// `certificateVerification = .fullVerification`, and pass `serverHostname:` to the client handler;
/// the certificates from `roster tls cert create` carry the SANs for it.
public struct PeerTLSMaterial: Sendable {
    /// The cluster CA: the one and only trust root for peers.
    public let caCertificate: NIOSSLCertificate
    /// This node's certificate (and any intermediates after it), presented on both sides.
    public let certificateChain: [NIOSSLCertificate]
    /// This node's private key.
    public let privateKey: NIOSSLPrivateKey
    /// The CN of this node's certificate, which peers will compare with our handshake name.
    public let nodeName: String?

    /// Loads the three files and checks that they fit together, so that a wrong file is reported
    /// by name at start-up rather than as anonymous handshake failures on every peer: the key must
    /// belong to the certificate, the certificate must be signed by the CA, must be valid now, and
    /// must allow both serverAuth and clientAuth.
    ///
    /// - Throws: `TLSMaterialError`, naming the file at fault.
    public static func load(
        caPath: String, certPath: String, keyPath: String, now: Date = Date()
    ) throws(TLSMaterialError) -> PeerTLSMaterial {
        let (caRole, certRole, keyRole) = ("TLS CA certificate", "TLS certificate", "TLS key")
        let caText = try PEMFiles.read(caPath, role: caRole)
        let certText = try PEMFiles.read(certPath, role: certRole)
        let keyText = try PEMFiles.read(keyPath, role: keyRole)

        let nioCA = try parse(caPath, caRole) { try NIOSSLCertificate(bytes: Array(caText.utf8), format: .pem) }
        let chain = try parse(certPath, certRole) { try NIOSSLCertificate.fromPEMBytes(Array(certText.utf8)) }
        let nioKey = try parse(keyPath, keyRole) { try NIOSSLPrivateKey(bytes: Array(keyText.utf8), format: .pem) }
        let ca = try parse(caPath, caRole) { try Certificate(derEncoded: try nioCA.toDERBytes()) }
        guard let leaf = chain.first else {
            throw .invalidContents(path: certPath, role: certRole, reason: "it holds no PEM certificate")
        }
        let certificate = try parse(certPath, certRole) { try Certificate(derEncoded: try leaf.toDERBytes()) }
        let key = try parse(keyPath, keyRole) { try Certificate.PrivateKey(pemEncoded: keyText) }

        guard key.publicKey == certificate.publicKey else {
            throw .keyDoesNotMatchCertificate(keyPath: keyPath, certificatePath: certPath)
        }
        guard certificate.issuer == ca.subject, ca.publicKey.isValidSignature(certificate.signature, for: certificate)
        else { throw .notSignedByCA(certificatePath: certPath, caPath: caPath) }
        for (cert, path, role) in [(ca, caPath, caRole), (certificate, certPath, certRole)]
        where !(cert.notValidBefore <= now && now < cert.notValidAfter) {
            throw .outsideValidity(path: path, role: role, notBefore: cert.notValidBefore, notAfter: cert.notValidAfter)
        }
        if let usage = try? certificate.extensions.extendedKeyUsage,
            !(usage.contains(.serverAuth) && usage.contains(.clientAuth))
        {
            throw .invalidContents(
                path: certPath, role: certRole,
                reason:
                    "its extendedKeyUsage must allow both serverAuth and clientAuth, because peers both dial and accept"
            )
        }
        return PeerTLSMaterial(
            caCertificate: nioCA, certificateChain: chain, privateKey: nioKey, nodeName: commonName(of: certificate))
    }

    /// Runs one parser and blames `path` if it fails, so BoringSSL's and X509's errors reach the
    /// operator with the file they were about.
    private static func parse<T>(
        _ path: String, _ role: String, _ body: () throws -> T
    ) throws(TLSMaterialError) -> T {
        do {
            return try body()
        } catch {
            throw .invalidContents(path: path, role: role, reason: "it is not valid PEM for that (\(error))")
        }
    }

    // MARK: - Configurations and contexts

    /// The accepting side: presents this node's certificate and *requires* a client certificate
    /// chained to the CA. A client without one, or with one from another CA, fails the handshake.
    public func serverConfiguration() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: certificateChain.map { .certificate($0) }, privateKey: .privateKey(privateKey),
            trustRoots: .certificates([caCertificate]))
        // NIOSSL's server side turns any verification mode into SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
        // which is what makes the client certificate mandatory. Spelled out so it cannot drift.
        configuration.certificateVerification = .noHostnameVerification
        configuration.minimumTLSVersion = .tlsv13
        return configuration
    }

    /// The dialing side: presents this node's certificate and accepts only servers chained to the
    /// CA. No hostname check; see the type's documentation for why.
    public func clientConfiguration() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateChain = certificateChain.map { .certificate($0) }
        configuration.privateKey = .privateKey(privateKey)
        configuration.trustRoots = .certificates([caCertificate])
        configuration.certificateVerification = .noHostnameVerification
        configuration.minimumTLSVersion = .tlsv13
        return configuration
    }

    /// A context for `NIOSSLServerHandler`. Build it once and share it: contexts are thread-safe
    /// and expensive to create.
    public func serverContext() throws -> NIOSSLContext {
        try NIOSSLContext(configuration: serverConfiguration())
    }

    /// A context for `NIOSSLClientHandler(context:serverHostname: nil)`.
    public func clientContext() throws -> NIOSSLContext {
        try NIOSSLContext(configuration: clientConfiguration())
    }

    /// The node name a verified peer certificate was issued for (its CN), for the transport to
    /// compare with the name the peer claims in the Roster handshake. `nil` if it has no CN.
    public static func nodeName(ofPeerCertificate peer: NIOSSLCertificate) -> String? {
        guard let der = try? peer.toDERBytes(), let certificate = try? Certificate(derEncoded: der) else { return nil }
        return commonName(of: certificate)
    }

    static func commonName(of certificate: Certificate) -> String? {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return String(attribute.value)
            }
        }
        return nil
    }
}
