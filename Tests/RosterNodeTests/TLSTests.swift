import Foundation
import RosterNode
import Testing
import X509

// MARK: - Scratch directories

/// A fresh directory per test, removed afterwards, so tests can run in parallel and
/// `O_EXCL` refusals are never caused by another test's leftovers.
final class TLSScratch: Sendable {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("roster-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name)) }
}

/// The certificate in a PEM file, as X509 sees it.
private func readCertificate(_ path: String) throws -> Certificate {
    try Certificate(pemEncoded: String(contentsOfFile: path, encoding: .utf8))
}

/// An IP address SAN as `roster tls cert create` writes it.
private func ipSAN(_ bytes: [UInt8]) -> GeneralName { .ipAddress(.init(contentBytes: ArraySlice(bytes))) }

// MARK: - Creating the CA and node certificates

@Suite struct CertificateAuthorityTests {
    @Test func caIsASelfSignedSigningOnlyCertificateWithAPrivateKeyFile() throws {
        let dir = try TLSScratch()
        let files = try CertificateAuthority.create(inDirectory: dir.path)
        #expect(files.certificatePath == dir.file("ca.pem") && files.keyPath == dir.file("ca-key.pem"))

        let ca = try readCertificate(files.certificatePath)
        #expect(ca.subject == ca.issuer)
        #expect(ca.subject.description.hasPrefix("CN=Roster CA "))
        #expect(ca.publicKey.isValidSignature(ca.signature, for: ca))
        #expect(try ca.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(try ca.extensions.keyUsage == KeyUsage(keyCertSign: true, cRLSign: true))
        #expect(try ca.extensions.subjectKeyIdentifier != nil)
        let years = ca.notValidAfter.timeIntervalSince(ca.notValidBefore) / (365.25 * 86_400)
        #expect(years > 9.99 && years < 10.01)

        let mode = try FileManager.default.attributesOfItem(atPath: files.keyPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func nodeCertificateVerifiesAgainstTheCAAndCarriesEverySAN() async throws {
        let dir = try TLSScratch()
        _ = try CertificateAuthority.create(inDirectory: dir.path)
        let files = try CertificateAuthority.issueNodeCertificate(
            inDirectory: dir.path, nodeName: "n1", ipAddresses: ["10.1.2.3", "fd00::5"], dnsNames: ["n1.example.com"])
        #expect(files.certificatePath == dir.file("n1.pem") && files.keyPath == dir.file("n1-key.pem"))
        let mode = try FileManager.default.attributesOfItem(atPath: files.keyPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let ca = try readCertificate(dir.file("ca.pem"))
        let node = try readCertificate(files.certificatePath)
        var verifier = Verifier(rootCertificates: CertificateStore([ca])) {
            RFC5280Policy()
            ServerIdentityPolicy(serverHostname: "n1", serverIP: "10.1.2.3")
        }
        let result = await verifier.validate(leaf: node, intermediates: CertificateStore())
        guard case .validCertificate(let chain) = result else {
            Issue.record("node certificate did not verify against its CA: \(result)")
            return
        }
        #expect(Array(chain) == [node, ca])

        #expect(node.subject.description == "CN=n1")
        let sans = try #require(try node.extensions.subjectAlternativeNames)
        #expect(
            Array(sans) == [
                .dnsName("n1"), .dnsName("localhost"), .dnsName("n1.example.com"),
                ipSAN([127, 0, 0, 1]), ipSAN([10, 1, 2, 3]),
                ipSAN([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]),
            ])
        let usage = try #require(try node.extensions.extendedKeyUsage)
        #expect(usage.contains(.serverAuth) && usage.contains(.clientAuth))
        #expect(try node.extensions.keyUsage == KeyUsage(digitalSignature: true))
        #expect(try node.extensions.basicConstraints == .notCertificateAuthority)
        #expect(
            try node.extensions.authorityKeyIdentifier?.keyIdentifier
                == ca.extensions.subjectKeyIdentifier?.keyIdentifier)
        let years = node.notValidAfter.timeIntervalSince(node.notValidBefore) / (365.25 * 86_400)
        #expect(years > 1.99 && years < 2.01)
    }

    @Test func caCreateRefusesToOverwriteAnExistingCA() throws {
        let dir = try TLSScratch()
        _ = try CertificateAuthority.create(inDirectory: dir.path)
        let before = try String(contentsOfFile: dir.file("ca.pem"), encoding: .utf8)
        #expect(throws: TLSMaterialError.fileExists(path: dir.file("ca.pem"), role: "CA certificate")) {
            try CertificateAuthority.create(inDirectory: dir.path)
        }
        #expect(try String(contentsOfFile: dir.file("ca.pem"), encoding: .utf8) == before)
    }

    @Test func certCreateRefusesWithoutACAAndWritesNothing() throws {
        let dir = try TLSScratch()
        let error = #expect(throws: TLSMaterialError.self) {
            try CertificateAuthority.issueNodeCertificate(inDirectory: dir.path, nodeName: "n1")
        }
        #expect(error == .missingFile(path: dir.file("ca.pem"), role: "CA certificate"))
        #expect(error?.description.contains("roster tls ca create --dir \(dir.path)") == true)
        #expect(!dir.exists("n1.pem") && !dir.exists("n1-key.pem"))
    }

    @Test func certCreateRefusesToOverwriteANodeCertificate() throws {
        let dir = try TLSScratch()
        _ = try CertificateAuthority.create(inDirectory: dir.path)
        _ = try CertificateAuthority.issueNodeCertificate(inDirectory: dir.path, nodeName: "n1")
        #expect(throws: TLSMaterialError.fileExists(path: dir.file("n1.pem"), role: "node certificate")) {
            try CertificateAuthority.issueNodeCertificate(inDirectory: dir.path, nodeName: "n1")
        }
    }

    @Test func badArgumentsAreRefusedBeforeAnyFileIsWritten() throws {
        let dir = try TLSScratch()
        _ = try CertificateAuthority.create(inDirectory: dir.path)
        #expect(throws: TLSMaterialError.invalidIPAddress("10.1.2")) {
            try CertificateAuthority.issueNodeCertificate(
                inDirectory: dir.path, nodeName: "n1", ipAddresses: ["10.1.2"])
        }
        #expect(throws: TLSMaterialError.invalidDNSName("../evil", role: "node name")) {
            try CertificateAuthority.issueNodeCertificate(inDirectory: dir.path, nodeName: "../evil")
        }
        #expect(throws: TLSMaterialError.invalidDNSName("bad_name", role: "SAN")) {
            try CertificateAuthority.issueNodeCertificate(inDirectory: dir.path, nodeName: "n1", dnsNames: ["bad_name"])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["ca-key.pem", "ca.pem"])
    }

    @Test func aCAKeyFromAnotherCAIsReportedByFileName() throws {
        let (dir, other) = (try TLSScratch(), try TLSScratch())
        _ = try CertificateAuthority.create(inDirectory: dir.path)
        _ = try CertificateAuthority.create(inDirectory: other.path)
        try FileManager.default.removeItem(atPath: dir.file("ca-key.pem"))
        try FileManager.default.copyItem(atPath: other.file("ca-key.pem"), toPath: dir.file("ca-key.pem"))
        #expect(
            throws: TLSMaterialError.keyDoesNotMatchCertificate(
                keyPath: dir.file("ca-key.pem"), certificatePath: dir.file("ca.pem"))
        ) { try CertificateAuthority.issueNodeCertificate(inDirectory: dir.path, nodeName: "n1") }
    }
}

// MARK: - Loading peer material

@Suite struct PeerTLSMaterialTests {
    @Test func loadsMatchingFilesAndReportsTheNodeName() throws {
        let dir = try TLSScratch()
        _ = try CertificateAuthority.create(inDirectory: dir.path)
        _ = try CertificateAuthority.issueNodeCertificate(inDirectory: dir.path, nodeName: "n1")
        let material = try PeerTLSMaterial.load(
            caPath: dir.file("ca.pem"), certPath: dir.file("n1.pem"), keyPath: dir.file("n1-key.pem"))
        #expect(material.nodeName == "n1")
        #expect(material.certificateChain.count == 1)
        let leaf = try #require(material.certificateChain.first)
        #expect(PeerTLSMaterial.nodeName(ofPeerCertificate: leaf) == "n1")
        _ = try material.serverContext()
        _ = try material.clientContext()
    }

    @Test func mismatchedFilesAreRejectedNamingTheFile() throws {
        let (dir, other) = (try TLSScratch(), try TLSScratch())
        for scratch in [dir, other] {
            _ = try CertificateAuthority.create(inDirectory: scratch.path)
            _ = try CertificateAuthority.issueNodeCertificate(inDirectory: scratch.path, nodeName: "n1")
        }
        _ = try CertificateAuthority.issueNodeCertificate(inDirectory: dir.path, nodeName: "n2")

        #expect(
            throws: TLSMaterialError.notSignedByCA(certificatePath: other.file("n1.pem"), caPath: dir.file("ca.pem"))
        ) {
            try PeerTLSMaterial.load(
                caPath: dir.file("ca.pem"), certPath: other.file("n1.pem"), keyPath: other.file("n1-key.pem"))
        }
        #expect(
            throws: TLSMaterialError.keyDoesNotMatchCertificate(
                keyPath: dir.file("n2-key.pem"), certificatePath: dir.file("n1.pem"))
        ) {
            try PeerTLSMaterial.load(
                caPath: dir.file("ca.pem"), certPath: dir.file("n1.pem"), keyPath: dir.file("n2-key.pem"))
        }
        #expect(throws: TLSMaterialError.missingFile(path: dir.file("n9.pem"), role: "TLS certificate")) {
            try PeerTLSMaterial.load(
                caPath: dir.file("ca.pem"), certPath: dir.file("n9.pem"), keyPath: dir.file("n1-key.pem"))
        }
        try Data("not a key".utf8).write(to: URL(fileURLWithPath: dir.file("junk-key.pem")))
        let error = #expect(throws: TLSMaterialError.self) {
            try PeerTLSMaterial.load(
                caPath: dir.file("ca.pem"), certPath: dir.file("n1.pem"), keyPath: dir.file("junk-key.pem"))
        }
        #expect(error?.description.contains(dir.file("junk-key.pem")) == true)
    }

    @Test func anExpiredCertificateIsRejectedAtLoad() throws {
        let dir = try TLSScratch()
        _ = try CertificateAuthority.create(inDirectory: dir.path)
        _ = try CertificateAuthority.issueNodeCertificate(inDirectory: dir.path, nodeName: "n1")
        let threeYearsOn = Date().addingTimeInterval(3 * 365 * 86_400)
        let error = #expect(throws: TLSMaterialError.self) {
            try PeerTLSMaterial.load(
                caPath: dir.file("ca.pem"), certPath: dir.file("n1.pem"), keyPath: dir.file("n1-key.pem"),
                now: threeYearsOn)
        }
        guard case .outsideValidity(let path, _, _, _) = error else {
            Issue.record("expected outsideValidity, got \(String(describing: error))")
            return
        }
        #expect(path == dir.file("n1.pem"))
    }
}
