import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import RosterCore
import RosterHTTP
import RosterNode
import Testing

// MARK: - A node under test

/// The node every route test talks to.
enum TestNode {
    static let name = "node-a"
    static let datacenter = "dc-test"
    static let address = "127.0.0.1"
    static let clusterPort = 8301
    static let info = NodeInfo(
        name: name, datacenter: datacenter, address: address, clusterPort: clusterPort, version: "0.0.0-test")
}

/// A clock the test moves by hand, so that timestamps differ when the test says so and not by luck.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var wall: Int64 = 1_800_000_000_000
    private var monotonic: Int64 = 1_000_000

    func advance(milliseconds: Int64) {
        lock.withLock {
            wall += milliseconds
            monotonic += milliseconds
        }
    }

    var nodeClock: NodeClock {
        NodeClock(
            wallMillis: { [self] in lock.withLock { wall } },
            monotonicMillis: { [self] in lock.withLock { monotonic } })
    }
}

/// What a test gets: a client for the router, and the registry and clock behind it.
struct TestAPI: Sendable {
    let client: any TestClientProtocol
    let registry: Registry
    let clock: ManualClock
}

let quietLogger = Logger(label: "roster-http-tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// Runs `test` against a fresh registry in its own temporary directory, removed afterwards.
func withAPI<T: Sendable>(
    prometheus: PrometheusCollectorRegistry? = nil,
    _ test: @Sendable (TestAPI) async throws -> T
) async throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("roster-http-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let clock = ManualClock()
    let registry = try await Registry.open(
        nodeID: TestNode.name, dataDir: dir.path, clock: clock.nodeClock, logger: quietLogger)
    await registry.updateView(.solo(TestNode.name))
    let api = APIContext(registry: registry, node: TestNode.info)
    let app = Application(router: HTTPAPI.router(api: api, prometheus: prometheus), logger: quietLogger)
    do {
        let result = try await app.test(.router) { client in
            try await test(TestAPI(client: client, registry: registry, clock: clock))
        }
        await registry.close()
        return result
    } catch {
        await registry.close()
        throw error
    }
}

// MARK: - Requests

extension TestClientProtocol {
    func get(_ uri: String) async throws -> TestResponse {
        try await execute(uri: uri, method: .get)
    }

    func post(_ uri: String, _ body: String) async throws -> TestResponse {
        try await execute(
            uri: uri, method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: body))
    }

    func post(_ uri: String, json: [String: Any]) async throws -> TestResponse {
        try await post(uri, jsonText(json))
    }

    func put(_ uri: String, _ body: String? = nil) async throws -> TestResponse {
        try await execute(
            uri: uri, method: .put, headers: body == nil ? [:] : [.contentType: "application/json"],
            body: body.map { ByteBuffer(string: $0) })
    }

    func put(_ uri: String, json: [String: Any]) async throws -> TestResponse {
        try await put(uri, jsonText(json))
    }

    /// Registers a native instance; the defaults make a valid one.
    @discardableResult
    func registerNative(
        service: String, id: String, port: Int = 8080, extra: [String: Any] = [:]
    ) async throws -> TestResponse {
        var body: [String: Any] = ["service_name": service, "instance_id": id, "host": "10.0.0.1", "port": port]
        body.merge(extra) { _, new in new }
        let response = try await post("/registry/register", json: body)
        #expect(
            response.status == .created || response.status == .ok,
            "registering \(service)/\(id) failed: \(response.status) \(response.text)")
        return response
    }

    /// Registers through Consul's agent API.
    @discardableResult
    func registerConsul(_ body: [String: Any]) async throws -> TestResponse {
        let response = try await put("/v1/agent/service/register", json: body)
        #expect(response.status == .ok, "Consul registration failed: \(response.status) \(response.text)")
        return response
    }
}

func jsonText(_ object: Any) -> String {
    // Test inputs are always valid JSON objects, so a failure here is a bug in the test itself.
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
}

// MARK: - Responses

struct ErrorReply: Decodable {
    struct Detail: Decodable {
        var field: String
        var message: String
    }
    var error: Detail
}

extension TestResponse {
    var text: String { String(buffer: body) }

    var data: Data { Data(body.readableBytesView) }

    func json() throws -> Any {
        try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }

    /// The body as a JSON object; fails the test if it is anything else.
    func object(sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        try #require(
            try json() as? [String: Any], "expected a JSON object, got \(text)", sourceLocation: sourceLocation)
    }

    /// The body as a JSON array of objects.
    func array(sourceLocation: SourceLocation = #_sourceLocation) throws -> [[String: Any]] {
        try #require(
            try json() as? [[String: Any]], "expected a JSON array, got \(text)", sourceLocation: sourceLocation)
    }

    /// The `{"error": {...}}` body every failure carries.
    func apiError(sourceLocation: SourceLocation = #_sourceLocation) throws -> ErrorReply.Detail {
        do {
            return try JSONDecoder().decode(ErrorReply.self, from: data).error
        } catch {
            Issue.record("expected an error body, got \(head.status) \(text)", sourceLocation: sourceLocation)
            throw error
        }
    }

    /// `X-Consul-Index` as a number, if present and numeric.
    var consulIndex: UInt64? {
        headers[HTTPField.Name("X-Consul-Index")!].flatMap { UInt64($0) }
    }
}

// MARK: - Reading the registry through the API

extension TestAPI {
    /// The instance ids listed by `uri` (a `/registry/services...` listing), sorted.
    func listedIDs(_ uri: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String] {
        let response = try await client.get(uri)
        #expect(
            response.status == .ok, "GET \(uri): \(response.status) \(response.text)", sourceLocation: sourceLocation)
        let body = try response.object(sourceLocation: sourceLocation)
        var ids: [String] = []
        if let services = body["services"] as? [String: [[String: Any]]] {
            ids = services.values.flatMap { $0 }.compactMap { $0["instance_id"] as? String }
        } else if let instances = body["instances"] as? [[String: Any]] {
            ids = instances.compactMap { $0["instance_id"] as? String }
        } else {
            Issue.record("GET \(uri) is not a listing: \(response.text)", sourceLocation: sourceLocation)
        }
        return ids.sorted()
    }

    /// The entries of `/v1/health/service/NAME[?query]`.
    func health(_ service: String, query: String = "", sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> [[String: Any]]
    {
        let response = try await client.get("/v1/health/service/\(service)\(query)")
        #expect(response.status == .ok, "health of \(service): \(response.status)", sourceLocation: sourceLocation)
        return try response.array(sourceLocation: sourceLocation)
    }

    /// One check of a health entry, by id.
    func check(_ checkID: String, of service: String, sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> [String: Any]
    {
        let checks = try await health(service, sourceLocation: sourceLocation)
            .flatMap { ($0["Checks"] as? [[String: Any]]) ?? [] }
        return try #require(
            checks.first { $0["CheckID"] as? String == checkID }, "no check \(checkID) in \(checks)",
            sourceLocation: sourceLocation)
    }

    /// Asserts that the registry holds nothing at all: no listing, no instance, no change.
    func expectEmpty(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(
            try await listedIDs("/registry/services", sourceLocation: sourceLocation) == [],
            sourceLocation: sourceLocation)
        #expect(await registry.instanceCount == 0, sourceLocation: sourceLocation)
        #expect(await registry.modifyIndex == 1, "a refused write changed the registry", sourceLocation: sourceLocation)
    }
}
