#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call on a file, with the path and errno text, for logs and start-up errors.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    public var errnoValue: Int32

    public var description: String {
        "\(operation) '\(path)' failed: \(String(cString: strerror(errnoValue)))"
    }
}

/// Thin wrappers over POSIX file calls. Foundation's FileHandle hides fsync errors and can't
/// fdatasync, and durability is the whole point here.
enum FileIO {
    static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws(FileError) -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        if fd < 0 { throw FileError(operation: "open", path: path, errnoValue: errno) }
        return fd
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(FileError) {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(operation: "write", path: path, errnoValue: errno)
            }
            written += n
        }
    }

    static func sync(_ fd: Int32, path: String) throws(FileError) {
        if fdatasync(fd) != 0 { throw FileError(operation: "fdatasync", path: path, errnoValue: errno) }
    }

    /// A rename or a new file is durable only once its directory is synced.
    static func syncDirectory(_ path: String) throws(FileError) {
        let fd = try open(path, flags: O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        if fsync(fd) != 0 { throw FileError(operation: "fsync", path: path, errnoValue: errno) }
    }

    static func readAll(_ path: String) throws(FileError) -> [UInt8] {
        let fd = try open(path, flags: O_RDONLY)
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(operation: "read", path: path, errnoValue: errno)
            }
            if n == 0 { return result }
            result.append(contentsOf: chunk[0..<n])
        }
    }

    static func truncate(_ path: String, to length: Int) throws(FileError) {
        if Glibc.truncate(path, off_t(length)) != 0 { throw FileError(operation: "truncate", path: path, errnoValue: errno) }
    }

    static func makeDirectory(_ path: String) throws(FileError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw FileError(operation: "mkdir", path: path, errnoValue: errno) }
    }

    static func listDirectory(_ path: String) throws(FileError) -> [String] {
        guard let dir = opendir(path) else { throw FileError(operation: "opendir", path: path, errnoValue: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func remove(_ path: String) throws(FileError) {
        if unlink(path) != 0 && errno != ENOENT { throw FileError(operation: "unlink", path: path, errnoValue: errno) }
    }

    static func rename(_ from: String, _ to: String) throws(FileError) {
        if Glibc.rename(from, to) != 0 { throw FileError(operation: "rename", path: "\(from) → \(to)", errnoValue: errno) }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}
