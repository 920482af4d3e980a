import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// MARK: - Reading and writing PEM files

/// File plumbing for certificates and keys. It turns every failure into a `TLSMaterialError` that
/// names the file and its role, and it creates files with `O_EXCL` so that an existing CA or key is
/// never overwritten, not even by a race between two `roster tls` runs.
enum PEMFiles {
    /// Reads a whole text file, telling "missing" apart from "unreadable" because the fixes differ.
    static func read(_ path: String, role: String) throws(TLSMaterialError) -> String {
        guard FileIO.exists(path) else { throw .missingFile(path: path, role: role) }
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readAll(path)
        } catch {
            throw .unreadableFile(path: path, role: role, reason: String(cString: strerror(error.errnoValue)))
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .invalidContents(path: path, role: role, reason: "it is not PEM text")
        }
        return text
    }

    /// Fails on the first of `files` that exists, before anything is written, so that a refused run
    /// leaves no half-written pair behind.
    static func requireAbsent(_ files: [(path: String, role: String)]) throws(TLSMaterialError) {
        for file in files where FileIO.exists(file.path) {
            throw .fileExists(path: file.path, role: file.role)
        }
    }

    /// Creates `path` exclusively with exactly `mode` (fchmod, so the umask cannot widen or narrow
    /// it) and syncs it: a key that vanishes after a crash would orphan its certificate.
    static func writeNew(_ path: String, _ text: String, mode: mode_t, role: String) throws(TLSMaterialError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if fd < 0 {
            let code = errno
            if code == EEXIST { throw .fileExists(path: path, role: role) }
            throw .writeFailed(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }
        do throws(FileError) {
            if fchmod(fd, mode) != 0 { throw FileError(operation: "fchmod", path: path, errnoValue: errno) }
            try FileIO.writeAll(fd, Array(text.utf8), path: path)
            try FileIO.sync(fd, path: path)
        } catch {
            unlink(path)
            throw .writeFailed(path: path, reason: String(cString: strerror(error.errnoValue)))
        }
    }

    /// Creates the output directory (and its parents) so `--dir` may name a fresh location.
    static func makeDirectory(_ path: String) throws(TLSMaterialError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: path, reason: "cannot create the directory: \(error.localizedDescription)")
        }
    }

    /// `DIR/NAME` without doubling or dropping the slash.
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}

// MARK: - Names and addresses for subject alternative names

enum SANParsing {
    /// The 4 or 16 network-order bytes of an IP address, as an X.509 iPAddress SAN holds them.
    /// Brackets are tolerated because IPv6 literals are often copied from `[::1]:8301`.
    static func ipAddressBytes(_ text: String) throws(TLSMaterialError) -> [UInt8] {
        var literal = text
        if literal.hasPrefix("[") && literal.hasSuffix("]") { literal = String(literal.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, literal, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        throw .invalidIPAddress(text)
    }

    /// RFC 1123 host names: dot-separated labels of 1–63 letters, digits and inner hyphens, 253 in
    /// all. Stricter than X.509 needs, because the node name also becomes a file name: this rules
    /// out `/`, `..` and empty names for free.
    static func validateDNSName(_ name: String, role: String) throws(TLSMaterialError) {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        let valid =
            !name.isEmpty && name.utf8.count <= 253
            && labels.allSatisfy { label in
                label.utf8.count >= 1 && label.utf8.count <= 63
                    && label.utf8.allSatisfy { isLetterOrDigit($0) || $0 == UInt8(ascii: "-") }
                    && label.utf8.first != UInt8(ascii: "-") && label.utf8.last != UInt8(ascii: "-")
            }
        if !valid { throw .invalidDNSName(name, role: role) }
    }

    private static func isLetterOrDigit(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }
}
