import Foundation
import NIOCore

// MARK: - Lock

/// A value behind a lock, for the few pieces of transport state that are touched both from the
/// caller's thread (`send`) and from event loops.
///
/// `NSLock` rather than `Synchronization.Mutex`, because the package still supports macOS 14.
final class TransportLocked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        self.lock.lock()
        defer { self.lock.unlock() }
        return try body(&self.value)
    }
}

// MARK: - Addresses

/// A peer address as `send(_:to:)` takes it: `host:port`, or `[v6]:port`.
struct PeerAddress: Hashable, Sendable {
    var host: String
    var port: Int

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = Substring(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (1...65_535).contains(port) else { return nil }
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
        } else if host.contains(":") {
            return nil  // an IPv6 address must be bracketed, or the port is ambiguous
        }
        guard !host.isEmpty else { return nil }
        self.host = String(host)
        self.port = port
    }
}

extension SocketAddress {
    /// `ip:port`, or `[ip]:port` for IPv6: the form peers and logs use.
    var peerDescription: String {
        let ip = self.ipAddress ?? "?"
        let port = self.port.map(String.init) ?? "?"
        if case .v6 = self { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }
}
