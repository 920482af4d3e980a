import Foundation
import RosterCore
@testable import RosterDNS

/// A data source backed by plain arrays, matching names without regard to case as the
/// `DNSDataSource` contract asks. It returns unhealthy instances too, so that tests see the
/// resolver filter them itself.
struct InMemoryDataSource: DNSDataSource {
    var instances: [ServiceInstance] = []
    var nodes: [String: String] = [:]

    func healthyInstances(service: String, tag: String?) async -> [ServiceInstance] {
        instances.filter { instance in
            instance.serviceName.lowercased() == service
                && (tag.map { tag in instance.tags.contains { $0.lowercased() == tag } } ?? true)
        }
    }

    func nodeAddress(_ name: String) async -> String? {
        nodes.first { $0.key.lowercased() == name }?.value
    }
}

/// A seeded generator, so that "random order" is reproducible in a test.
typealias SeededGenerator = SplitMix64

func instance(
    _ id: String, service: String = "web", host: String = "10.0.0.1", port: Int = 8080, tags: [String] = [],
    weight: Int = 1, status: ServiceStatus = .running, checks: [HealthCheck] = []
) -> ServiceInstance {
    ServiceInstance(
        serviceName: service, instanceID: id, host: host, port: port, tags: tags, weight: weight, status: status,
        registeredAt: Timestamp(millisecondsSinceEpoch: 0), node: "n1", checks: checks)
}

func name(_ text: String) -> DNSName {
    // Test inputs are literals known to be valid.
    (try? DNSName(text)) ?? .root
}

/// A query message as a stub resolver would send it.
func query(
    _ text: String, _ type: DNSRecordType = .a, id: UInt16 = 0x1234, edns: UInt16? = nil
) -> DNSMessage {
    var header = DNSHeader(id: id)
    header.recursionDesired = true
    var message = DNSMessage(header: header)
    message.questions = [DNSQuestion(name: name(text), type: type)]
    message.edns = edns.map { DNSEDNS(udpPayloadSize: $0) }
    return message
}

extension DNSResolver {
    /// Sends `message` through the wire path, as the server does, and reads the reply back.
    func exchange(_ message: DNSMessage, over transport: DNSTransport = .udp, seed: UInt64 = 1) async throws -> (
        reply: DNSMessage, size: Int
    ) {
        var rng = SeededGenerator(seed: seed)
        guard let bytes = await respond(to: message.encoded(), over: transport, using: &rng) else {
            throw TestFailure("no reply to \(message.questions)")
        }
        return (try DNSMessage(decoding: bytes), bytes.count)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension DNSResourceRecord {
    var address: String? {
        if case .address(let address) = data { return address.description }
        return nil
    }
}
