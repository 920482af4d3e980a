import Foundation
import Logging
import NIOPosix
import RosterCore
import Testing
@testable import RosterNode

/// Three complete nodes in one process (registry, cluster actor, transport) over real loopback
/// mutual TLS. Conditions are awaited with deadlines; nothing sleeps to synchronise.
@Suite(.serialized) struct ClusterNodeTests {
    struct TestNode {
        var registry: Registry
        var cluster: ClusterNode
        var loops: Task<Void, Never>
        var dir: TemporaryDirectory
    }

    static func freePorts(_ count: Int) throws -> [Int] {
        try (0..<count).map { _ in
            let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: 0).wait()
            defer { try? channel.close().wait() }
            return channel.localAddress?.port ?? 0
        }
    }

    static func startCluster(size: Int) async throws -> [TestNode] {
        let certs = TemporaryDirectory()
        _ = try CertificateAuthority.create(inDirectory: certs.path)
        let ports = try freePorts(size)
        var nodes: [TestNode] = []
        for i in 0..<size {
            let name = "n\(i + 1)"
            let files = try CertificateAuthority.issueNodeCertificate(inDirectory: certs.path, nodeName: name, ipAddresses: [], dnsNames: [])
            let material = try PeerTLSMaterial.load(caPath: "\(certs.path)/ca.pem", certPath: files.certificatePath, keyPath: files.keyPath)
            let dir = TemporaryDirectory()
            let registry = try await Registry.open(nodeID: name, dataDir: dir.path, logger: quietLogger)
            var configuration = ClusterConfiguration(
                nodeName: name, clusterID: "test", advertise: "127.0.0.1:\(ports[i])", bindHost: "127.0.0.1",
                bindPort: ports[i], seeds: ports.map { "127.0.0.1:\($0)" }, security: .mutualTLS(try PeerTransportTLS(material: material)))
            configuration.antiEntropyInterval = .milliseconds(200)
            let cluster = ClusterNode(
                configuration: configuration, generation: UInt64(i + 1), registry: registry,
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: ProcessInfo.processInfo.environment["CLUSTER_DEBUG"] != nil ? { var l = Logger(label: name); l.logLevel = .debug; return l }() : quietLogger)
            try await cluster.start()
            nodes.append(TestNode(registry: registry, cluster: cluster, loops: Task { await cluster.runLoops() }, dir: dir))
        }
        _ = certs
        return nodes
    }

    static func stop(_ nodes: [TestNode]) async {
        for node in nodes {
            node.loops.cancel()
            await node.cluster.leave()
        }
    }

    /// Polls `condition` until it holds or `timeout` passes.
    static func eventually(_ timeout: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await condition()
    }

    @Test func threeNodesFormAClusterAndReplicateWritesAndDeletes() async throws {
        let nodes = try await Self.startCluster(size: 3)
        defer { Task { await Self.stop(nodes) } }
        #expect(await Self.eventually {
            for node in nodes where await node.cluster.members.filter({ $0.state == .alive }).count != 3 { return false }
            return true
        }, "every node sees three alive members")

        let instance = ServiceInstance(
            serviceName: "web", instanceID: "web-1", host: "10.0.0.1", port: 80, registeredAt: Timestamp(millisecondsSinceEpoch: 0), node: "n1")
        _ = try await nodes[0].registry.register(instance, status: nil)
        #expect(await Self.eventually {
            let seenAt2 = await nodes[1].registry.instance("web-1") != nil
            let seenAt3 = await nodes[2].registry.instance("web-1") != nil
            return seenAt2 && seenAt3
        })

        _ = try await nodes[2].registry.deregister("web-1")
        #expect(await Self.eventually {
            let goneAt1 = await nodes[0].registry.instance("web-1") == nil
            let goneAt2 = await nodes[1].registry.instance("web-1") == nil
            return goneAt1 && goneAt2
        })
        #expect(await Self.eventually {
            let roots = [await nodes[0].registry.digestSummary.root, await nodes[1].registry.digestSummary.root, await nodes[2].registry.digestSummary.root]
            return Set(roots).count == 1
        }, "all digests equal")
    }

    @Test func aGracefulLeaveIsSeenAsLeftNotFailed() async throws {
        let nodes = try await Self.startCluster(size: 3)
        defer { Task { await Self.stop(Array(nodes.prefix(2))) } }
        #expect(await Self.eventually {
            for node in nodes where await node.cluster.members.filter({ $0.state == .alive }).count != 3 { return false }
            return true
        }, "n3 must know its peers before it can say goodbye to them")
        nodes[2].loops.cancel()
        await nodes[2].cluster.leave()
        #expect(await Self.eventually { await nodes[0].cluster.members.first { $0.identity.name == "n3" }?.state == .left })
        #expect(await nodes[1].cluster.members.first { $0.identity.name == "n3" }?.state != .failed)
    }
}
