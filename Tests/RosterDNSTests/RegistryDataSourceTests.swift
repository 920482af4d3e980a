import Foundation
import Logging
import RosterCore
import RosterNode
import Testing

@testable import RosterDNS

/// The adapter over a real `Registry`: what the agent will use.
@Suite struct RegistryDataSourceTests {
    @Test func findsHealthyInstancesWhateverTheCaseOfServiceAndTag() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("roster-dns-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let registry = try await Registry.open(nodeID: "n1", dataDir: dir, logger: logger)
        _ = try await registry.register(
            instance("w1", service: "Web", host: "10.0.0.1", tags: ["Primary"]), status: nil)
        _ = try await registry.register(instance("w2", service: "Web", host: "10.0.0.2"), status: nil)
        _ = try await registry.register(instance("a1", service: "api", host: "10.0.0.3", tags: ["v2"]), status: nil)
        _ = try await registry.register(instance("a2", service: "api", host: "10.0.0.4"), status: nil)
        _ = try await registry.setStatus("a2", service: "api", to: .unhealthy)

        let source = RegistryDNSDataSource(registry: registry, nodes: { [(name: "Node-1", address: "10.9.9.9")] })
        #expect(Set(await source.healthyInstances(service: "web", tag: nil).map(\.instanceID)) == ["w1", "w2"])
        #expect(await source.healthyInstances(service: "web", tag: "primary").map(\.instanceID) == ["w1"])
        #expect(await source.healthyInstances(service: "api", tag: nil).map(\.instanceID) == ["a1"])
        #expect(await source.healthyInstances(service: "api", tag: "v2").map(\.instanceID) == ["a1"])
        #expect(await source.healthyInstances(service: "nothing", tag: nil).isEmpty)
        #expect(await source.nodeAddress("node-1") == "10.9.9.9")
        #expect(await source.nodeAddress("node-2") == nil)

        let resolver = DNSResolver(dataSource: source)
        let reply = try await resolver.exchange(query("WEB.service.roster.")).reply
        #expect(Set(reply.answers.compactMap(\.address)) == ["10.0.0.1", "10.0.0.2"])
        await registry.close()
    }
}
