import Foundation
import HTTPTypes
import NIOCore
import HummingbirdTesting
import Testing

/// SPEC §2: bad input gets a 4xx whose JSON body names the field, and leaves no state behind.
@Suite struct BadInputTests {
    struct BadRequest: Sendable, CustomTestStringConvertible {
        enum Field: Sendable {
            case exactly(String)
            case prefix(String)
            case oneOf([String])
        }
        var name: String
        var method: HTTPRequest.Method = .post
        var uri = "/registry/register"
        var body: @Sendable () -> String
        var status: HTTPResponse.Status = .badRequest
        var field: Field
        var testDescription: String { name }
    }

    static func registration(_ overrides: [String: Any] = [:], removing: [String] = []) -> String {
        var body: [String: Any] = ["service_name": "web", "instance_id": "web-1", "host": "10.0.0.1", "port": 8080]
        body.merge(overrides) { _, new in new }
        for key in removing { body[key] = nil }
        return jsonText(body)
    }

    static let cases: [BadRequest] = [
        BadRequest(
            name: "missing service_name", body: { registration(removing: ["service_name"]) },
            field: .exactly("service_name")),
        BadRequest(
            name: "missing instance_id", body: { registration(removing: ["instance_id"]) },
            field: .exactly("instance_id")),
        BadRequest(name: "missing host", body: { registration(removing: ["host"]) }, field: .exactly("host")),
        BadRequest(name: "port 70000", body: { registration(["port": 70000]) }, field: .exactly("port")),
        BadRequest(name: "port 0", body: { registration(["port": 0]) }, field: .exactly("port")),
        BadRequest(name: "port as a string", body: { registration(["port": "8080"]) }, field: .exactly("port")),
        BadRequest(
            name: "service name with spaces", body: { registration(["service_name": "my web"]) },
            field: .exactly("service_name")),
        BadRequest(
            name: "service name with a dot", body: { registration(["service_name": "web.v2"]) },
            field: .exactly("service_name")),
        BadRequest(
            name: "instance id with a slash", body: { registration(["instance_id": "web/1"]) },
            field: .exactly("instance_id")),
        BadRequest(name: "unknown status", body: { registration(["status": "DANCING"]) }, field: .exactly("status")),
        BadRequest(
            name: "unknown deployment", body: { registration(["deployment": "purple"]) }, field: .exactly("deployment")),
        BadRequest(
            name: "truncated JSON", body: { #"{"service_name": "web", "instance_id": "web-1", "host": "10.0"# },
            field: .exactly("body")),
        BadRequest(name: "empty body", body: { "" }, field: .exactly("body")),
        BadRequest(name: "JSON that is not an object", body: { "[1, 2, 3]" }, field: .exactly("body")),
        BadRequest(
            name: "metadata value of 600 bytes",
            body: { registration(["metadata": ["blob": String(repeating: "x", count: 600)]]) },
            field: .prefix("metadata")),
        BadRequest(
            name: "metadata value of 3 MB",
            body: { registration(["metadata": ["blob": String(repeating: "x", count: 3 << 20)]]) },
            status: .contentTooLarge, field: .exactly("body")),
        BadRequest(name: "empty tag", body: { registration(["tags": ["ok", ""]]) }, field: .prefix("tags")),
        BadRequest(
            name: "65 tags", body: { registration(["tags": (0..<65).map { "t\($0)" }]) }, field: .exactly("tags")),
        BadRequest(
            name: "tag of 300 bytes", body: { registration(["tags": [String(repeating: "t", count: 300)]]) },
            field: .prefix("tags")),
        BadRequest(
            name: "metadata key of 200 bytes",
            body: { registration(["metadata": [String(repeating: "k", count: 200): "v"]]) },
            field: .prefix("metadata")),
        BadRequest(
            name: "heartbeat of an unknown instance", uri: "/registry/heartbeat",
            body: { jsonText(["service_name": "web", "instance_id": "web-1"]) }, status: .notFound,
            field: .exactly("instance_id")),
        BadRequest(
            name: "heartbeat without instance_id", uri: "/registry/heartbeat",
            body: { jsonText(["service_name": "web"]) },
            field: .exactly("instance_id")),
        BadRequest(
            name: "Consul registration without a name", method: .put, uri: "/v1/agent/service/register",
            body: { jsonText(["ID": "web-1", "Port": 80]) }, field: .exactly("Name")),
        BadRequest(
            name: "Consul registration with a bad TTL", method: .put, uri: "/v1/agent/service/register",
            body: { jsonText(["Name": "web", "Port": 80, "Check": ["TTL": "ten seconds"]]) },
            field: .exactly("Check.TTL")),
        BadRequest(
            name: "Consul registration with a name with spaces", method: .put, uri: "/v1/agent/service/register",
            body: { jsonText(["Name": "my web", "ID": "web-1", "Port": 80]) }, field: .oneOf(["Name", "service_name"])),
        BadRequest(
            name: "Consul registration of 3 MB", method: .put, uri: "/v1/agent/service/register",
            body: {
                jsonText([
                    "Name": "web", "ID": "web-1", "Port": 80, "Meta": ["blob": String(repeating: "x", count: 3 << 20)],
                ])
            },
            status: .contentTooLarge, field: .exactly("body")),
        BadRequest(
            name: "Consul check note of 5000 bytes", method: .put,
            uri: "/v1/agent/check/pass/service:web-1?note=\(String(repeating: "n", count: 5000))", body: { "" },
            field: .exactly("note")),
    ]

    @Test(arguments: cases)
    func badInputIsRefusedNamingTheFieldAndStoresNothing(_ bad: BadRequest) async throws {
        try await withAPI { api in
            let response = try await api.client.execute(
                uri: bad.uri, method: bad.method, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: bad.body()))
            #expect(response.status == bad.status, "\(response.text.prefix(300))")
            #expect(response.headers[.contentType] == "application/json")
            let error = try response.apiError()
            switch bad.field {
            case .exactly(let field): #expect(error.field == field, "message: \(error.message)")
            case .prefix(let prefix):
                #expect(error.field.hasPrefix(prefix), "field \(error.field), message: \(error.message)")
            case .oneOf(let fields):
                #expect(fields.contains(error.field), "field \(error.field), message: \(error.message)")
            }
            #expect(!error.message.isEmpty)
            try await api.expectEmpty()
            let lookup = try await api.client.get("/registry/instance/web-1")
            #expect(lookup.status == .notFound)
        }
    }

    @Test func refusedUpdateLeavesTheStoredInstanceUnchanged() async throws {
        try await withAPI { api in
            let original = try await api.client.registerNative(service: "web", id: "web-1", port: 8080).object()
            let index = await api.registry.modifyIndex
            let refused = try await api.client.post(
                "/registry/register",
                Self.registration(["port": 8081, "metadata": ["k": String(repeating: "y", count: 600)]]))
            #expect(refused.status == .badRequest)
            #expect(await api.registry.modifyIndex == index)
            let stored = try await api.client.get("/registry/instance/web-1").object()
            #expect(stored["port"] as? Int == 8080)
            #expect(stored["metadata"] as? [String: String] == original["metadata"] as? [String: String])
        }
    }
}
