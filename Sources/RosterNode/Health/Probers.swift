import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import RosterCore

/// Runs one probe of an HTTP or TCP check and says how it went. Never throws and never takes
/// longer than the check's timeout: a target that hangs is a critical result, not a stuck task.
protocol Prober: Sendable {
    func probe(_ check: ActiveCheck) async -> ProbeResult
}

/// HTTP checks through AsyncHTTPClient: 2xx passing, 429 warning, anything else, a refused
/// connection or a timeout critical. Redirects are followed, as Go's client does for Consul.
final class HTTPProber: Prober {
    private let client: HTTPClient
    private let userAgent: String

    init(eventLoopGroup: any EventLoopGroup, nodeName: String) {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .follow(max: 10, allowCycles: false), timeout: .init())
        configuration.httpVersion = .http1Only
        // A refused connection is an answer: retrying it until the deadline would turn every
        // "target down" into a full timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        // Many checks often share one host (a sidecar, a load balancer); 8 connections per host
        // would queue their probes behind each other and into false timeouts.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 256
        client = HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration)
        userAgent = "Roster Health Check (node \(nodeName))"
    }

    func probe(_ check: ActiveCheck) async -> ProbeResult {
        let label = "HTTP \(check.method) \(check.target)"
        var request = HTTPClientRequest(url: check.target)
        request.method = HTTPMethod(rawValue: check.method)
        request.headers.add(name: "User-Agent", value: userAgent)
        request.headers.add(name: "Accept", value: "text/plain, text/*, */*")
        do {
            let response = try await client.execute(request, timeout: .milliseconds(check.timeoutMillis))
            // Read (and drop) a bounded body so the connection can be reused.
            _ = try? await response.body.collect(upTo: 64 << 10)
            let code = Int(response.status.code)
            return ProbeResult(status: ProbeResult.httpStatus(code), output: "\(label): \(code) \(response.status.reasonPhrase)")
        } catch {
            return ProbeResult(status: .critical, output: "\(label): \(describe(error, timeoutMillis: check.timeoutMillis))")
        }
    }

    func shutdown() async {
        try? await client.shutdown()
    }
}

/// TCP checks: passing when a connection opens within the timeout.
struct TCPProber: Prober {
    let eventLoopGroup: any EventLoopGroup

    func probe(_ check: ActiveCheck) async -> ProbeResult {
        let label = "TCP connect \(check.target)"
        guard let (host, port) = Self.split(check.target) else {
            return ProbeResult(status: .critical, output: "\(label): not a host:port address")
        }
        do {
            let channel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(.milliseconds(check.timeoutMillis))
                .connect(host: host, port: port).get()
            try? await channel.close()
            return ProbeResult(status: .passing, output: "\(label): Success")
        } catch {
            return ProbeResult(status: .critical, output: "\(label): \(describe(error, timeoutMillis: check.timeoutMillis))")
        }
    }

    /// `host:port` or `[v6]:port`.
    static func split(_ target: String) -> (String, Int)? {
        guard let colon = target.lastIndex(of: ":"), let port = Int(target[target.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        let host = target[..<colon].trimmingCharacters(in: ["[", "]"])
        return host.isEmpty ? nil : (host, port)
    }
}

/// A short, human reason for a failed probe, for the check's output.
private func describe(_ error: any Error, timeoutMillis: Int64) -> String {
    if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .connectTimeout {
        return "timed out after \(GoDuration(milliseconds: timeoutMillis))"
    }
    switch error {
    case ChannelError.connectTimeout:
        return "timed out after \(GoDuration(milliseconds: timeoutMillis))"
    case let error as NIOConnectionError:
        if let first = error.connectionErrors.first { return "\(first.error)" }
        return "cannot connect: \(error.dnsAError.map { "\($0)" } ?? "no address")"
    default:
        return "\(error)"
    }
}
