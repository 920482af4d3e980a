import Foundation

/// Each start of a node is a new generation, so peers can tell "restarted" from "still the
/// old one". The number only has to grow on this node: it is the larger of the last one plus
/// one and this node's own wall clock in milliseconds, kept in `DATA/generation`.
public enum NodeGeneration {
    public static func next(dataDir: String, wallMillis: Int64) throws -> UInt64 {
        let path = "\(dataDir)/generation"
        let previous = (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        let next = max(previous + 1, UInt64(max(wallMillis, 0)))
        let temporary = path + ".tmp"
        try Data("\(next)\n".utf8).write(to: URL(fileURLWithPath: temporary), options: .atomic)
        try FileIO.rename(temporary, path)
        try FileIO.syncDirectory(dataDir)
        return next
    }
}
