import Foundation
import HummingbirdTesting
import RosterCore
import Testing

/// The native API's writes (SPEC §2a): register, heartbeat, deregister, status.
@Suite struct NativeLifecycleTests {
    // MARK: - Register

    @Test func registerAnswers201ThenUpdateAnswers200KeepingRegisteredAt() async throws {
        try await withAPI { api in
            let first = try await api.client.registerNative(
                service: "web", id: "web-1", port: 8080, extra: ["tags": ["v1"], "metadata": ["team": "core"]])
            #expect(first.status == .created)
            let created = try first.object()
            #expect(created["service_name"] as? String == "web")
            #expect(created["instance_id"] as? String == "web-1")
            #expect(created["host"] as? String == "10.0.0.1")
            #expect(created["port"] as? Int == 8080)
            #expect(created["tags"] as? [String] == ["v1"])
            #expect(created["metadata"] as? [String: String] == ["team": "core"])
            #expect(created["status"] as? String == "RUNNING", "a new instance without a status is RUNNING")
            #expect(created["node"] as? String == TestNode.name)
            let registeredAt = try #require(created["registered_at"] as? String)
            #expect(Timestamp(rfc3339: registeredAt) != nil, "registered_at is RFC 3339: \(registeredAt)")
            #expect(created["serviceName"] == nil && created["instanceID"] == nil, "keys are snake_case")

            api.clock.advance(milliseconds: 5_000)
            let second = try await api.client.registerNative(
                service: "web", id: "web-1", port: 9090, extra: ["tags": ["v2"]])
            #expect(second.status == .ok)
            let updated = try second.object()
            #expect(updated["port"] as? Int == 9090)
            #expect(updated["tags"] as? [String] == ["v2"])
            #expect(updated["registered_at"] as? String == registeredAt, "an update keeps registered_at")
            let lastHeartbeat = try #require(updated["last_heartbeat"] as? String)
            #expect(lastHeartbeat != registeredAt, "an update renews last_heartbeat")

            let stored = try await api.client.get("/registry/instance/web-1")
            #expect(stored.status == .ok)
            #expect(try stored.object()["port"] as? Int == 9090)
        }
    }

    @Test func registerKeepsAnExplicitStatus() async throws {
        try await withAPI { api in
            let response = try await api.client.registerNative(
                service: "web", id: "web-1", extra: ["status": "STARTING"])
            #expect(response.status == .created)
            #expect(try response.object()["status"] as? String == "STARTING")
        }
    }

    // MARK: - Heartbeat

    @Test func heartbeatAnswers200AndRenewsLastHeartbeat() async throws {
        try await withAPI { api in
            let registered = try await api.client.registerNative(service: "web", id: "web-1").object()
            api.clock.advance(milliseconds: 3_000)
            let response = try await api.client.post(
                "/registry/heartbeat", json: ["service_name": "web", "instance_id": "web-1"])
            #expect(response.status == .ok)
            let body = try response.object()
            #expect(body["instance_id"] as? String == "web-1")
            let before = try #require((registered["last_heartbeat"] as? String).flatMap(Timestamp.init(rfc3339:)))
            let after = try #require((body["last_heartbeat"] as? String).flatMap(Timestamp.init(rfc3339:)))
            #expect(after.millisecondsSinceEpoch - before.millisecondsSinceEpoch == 3_000)
        }
    }

    @Test func heartbeatPassesTheTTLShorthandCheck() async throws {
        try await withAPI { api in
            let registered = try await api.client.registerNative(service: "web", id: "web-1", extra: ["ttl": "10s"])
                .object()
            let checksBefore = try #require(registered["checks"] as? [[String: Any]])
            #expect(checksBefore.map { $0["status"] as? String } == ["critical"], "a TTL check starts critical")
            #expect(try await api.listedIDs("/registry/services?healthy=true") == [])

            let response = try await api.client.post(
                "/registry/heartbeat", json: ["service_name": "web", "instance_id": "web-1"])
            #expect(response.status == .ok)
            let checksAfter = try #require(try response.object()["checks"] as? [[String: Any]])
            #expect(checksAfter.map { $0["status"] as? String } == ["passing"])
            #expect(try await api.listedIDs("/registry/services?healthy=true") == ["web-1"])
        }
    }

    @Test func heartbeatForAnUnknownInstanceIs404() async throws {
        try await withAPI { api in
            let response = try await api.client.post(
                "/registry/heartbeat", json: ["service_name": "web", "instance_id": "nope"])
            #expect(response.status == .notFound)
            #expect(try response.apiError().field == "instance_id")
            try await api.expectEmpty()
        }
    }

    @Test func heartbeatNamingTheWrongServiceIs404() async throws {
        try await withAPI { api in
            try await api.client.registerNative(service: "web", id: "web-1")
            let response = try await api.client.post(
                "/registry/heartbeat", json: ["service_name": "api", "instance_id": "web-1"])
            #expect(response.status == .notFound)
            #expect(try response.apiError().field == "instance_id")
        }
    }

    // MARK: - Deregister

    @Test func deregisterAnswers200ThenTheInstanceIsGoneEverywhere() async throws {
        try await withAPI { api in
            try await api.client.registerNative(service: "web", id: "web-1")
            try await api.client.registerNative(service: "web", id: "web-2")

            let response = try await api.client.post(
                "/registry/deregister", json: ["service_name": "web", "instance_id": "web-1"])
            #expect(response.status == .ok)

            let lookup = try await api.client.get("/registry/instance/web-1")
            #expect(lookup.status == .notFound)
            #expect(try lookup.apiError().field == "instance_id")
            #expect(try await api.listedIDs("/registry/services") == ["web-2"])
            #expect(try await api.listedIDs("/registry/services/web") == ["web-2"])
            #expect(
                try await api.health("web").compactMap { ($0["Service"] as? [String: Any])?["ID"] as? String } == [
                    "web-2"
                ])

            let again = try await api.client.post(
                "/registry/deregister", json: ["service_name": "web", "instance_id": "web-1"])
            #expect(again.status == .notFound, "deregistering twice is a 404")
        }
    }

    @Test func deregisterForAnUnknownInstanceIs404() async throws {
        try await withAPI { api in
            let response = try await api.client.post(
                "/registry/deregister", json: ["service_name": "web", "instance_id": "ghost"])
            #expect(response.status == .notFound)
            #expect(try response.apiError().field == "instance_id")
        }
    }

    // MARK: - Status

    @Test func statusMovesThroughTheLifecycleAndRefusesRevivingAStoppedInstance() async throws {
        try await withAPI { api in
            try await api.client.registerNative(service: "web", id: "web-1")

            let stopping = try await api.client.post(
                "/registry/status", json: ["service_name": "web", "instance_id": "web-1", "status": "STOPPING"])
            #expect(stopping.status == .ok)
            #expect(try stopping.object()["status"] as? String == "STOPPING")

            let stopped = try await api.client.post(
                "/registry/status", json: ["service_name": "web", "instance_id": "web-1", "status": "STOPPED"])
            #expect(stopped.status == .ok)
            #expect(try stopped.object()["status"] as? String == "STOPPED")

            let revived = try await api.client.post(
                "/registry/status", json: ["service_name": "web", "instance_id": "web-1", "status": "RUNNING"])
            #expect(revived.status == .conflict)
            #expect(try revived.apiError().field == "status")

            let stored = try await api.client.get("/registry/instance/web-1")
            #expect(try stored.object()["status"] as? String == "STOPPED", "a refused move changes nothing")
        }
    }

    @Test func statusOfAnUnknownInstanceIs404AndAnUnknownStatusIs400() async throws {
        try await withAPI { api in
            let unknown = try await api.client.post(
                "/registry/status", json: ["service_name": "web", "instance_id": "ghost", "status": "STOPPING"])
            #expect(unknown.status == .notFound)

            try await api.client.registerNative(service: "web", id: "web-1")
            let bogus = try await api.client.post(
                "/registry/status", json: ["service_name": "web", "instance_id": "web-1", "status": "DANCING"])
            #expect(bogus.status == .badRequest)
            #expect(try bogus.apiError().field == "status")
        }
    }
}
