import Foundation

/// Everything that can go wrong while creating, issuing or loading the cluster's TLS files.
///
/// Every case carries the path or value at fault, because these errors surface at the command line
/// and at agent start-up, where "TLS failed" alone sends an operator hunting through a directory of
/// look-alike `.pem` files. The messages say what is wrong and what would be right.
public enum TLSMaterialError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file that would be written already exists. Certificates and keys are never overwritten:
    /// replacing a CA silently would cut every existing node off from the cluster.
    case fileExists(path: String, role: String)
    /// A file that is needed does not exist.
    case missingFile(path: String, role: String)
    /// A file exists but cannot be read (permissions, a directory, an I/O error).
    case unreadableFile(path: String, role: String, reason: String)
    /// A file was read but does not hold what its role needs (bad PEM, wrong key type, ...).
    case invalidContents(path: String, role: String, reason: String)
    /// A private key does not belong to the certificate it is paired with.
    case keyDoesNotMatchCertificate(keyPath: String, certificatePath: String)
    /// The CA file holds a certificate that may not sign others.
    case notACertificateAuthority(path: String)
    /// A node certificate was not signed by the configured CA.
    case notSignedByCA(certificatePath: String, caPath: String)
    /// A certificate is outside its validity period.
    case outsideValidity(path: String, role: String, notBefore: Date, notAfter: Date)
    /// A `--ip` value that is neither IPv4 nor IPv6.
    case invalidIPAddress(String)
    /// A node name or `--dns` value that is not a DNS name (it also becomes a file name).
    case invalidDNSName(String, role: String)
    /// Writing a file or creating the directory failed.
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .fileExists(let path, let role):
            return
                "\(role) '\(path)' already exists; refusing to overwrite it (move it away first if you really mean to replace it)"
        case .missingFile(let path, let role):
            let directory = (path as NSString).deletingLastPathComponent
            let hint =
                role.hasPrefix("CA")
                ? "; create it with 'roster tls ca create --dir \(directory.isEmpty ? "." : directory)'" : ""
            return "\(role) '\(path)' does not exist\(hint)"
        case .unreadableFile(let path, let role, let reason):
            return "cannot read \(role) '\(path)': \(reason)"
        case .invalidContents(let path, let role, let reason):
            return "\(role) '\(path)' is not usable: \(reason)"
        case .keyDoesNotMatchCertificate(let keyPath, let certificatePath):
            return
                "private key '\(keyPath)' does not belong to certificate '\(certificatePath)'; use the key written next to it"
        case .notACertificateAuthority(let path):
            return "'\(path)' is not a CA certificate (it lacks basicConstraints CA=true and keyCertSign)"
        case .notSignedByCA(let certificatePath, let caPath):
            return
                "certificate '\(certificatePath)' was not signed by CA '\(caPath)'; issue it with 'roster tls cert create' against that CA"
        case .outsideValidity(let path, let role, let notBefore, let notAfter):
            return
                "\(role) '\(path)' is only valid from \(notBefore) to \(notAfter); issue a new one (or check the clock)"
        case .invalidIPAddress(let value):
            return "'\(value)' is not an IP address; give IPv4 like 10.0.0.5 or IPv6 like fd00::5"
        case .invalidDNSName(let value, let role):
            return
                "\(role) '\(value)' is not a valid DNS name; use letters, digits, '-' and '.', like node-1 or n1.example.com"
        case .writeFailed(let path, let reason):
            return "cannot write '\(path)': \(reason)"
        }
    }
}
