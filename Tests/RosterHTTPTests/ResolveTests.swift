import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// Resolution (`/registry/resolve/{service}`, `/registry/release`) and version-range filters.
@Suite struct ResolveTests {
    /// The instance id a resolve answered, after checking it succeeded.
    private func resolvedID(
        _ api: TestAPI, _ uri: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> String {
        let response = try await api.client.get(uri)
        #expect(response.status == .ok, "GET \(uri): \(response.status) \(response.text)", sourceLocation: sourceLocation)
        return try #require(try response.object()["instance_id"] as? String, sourceLocation: sourceLocation)
    }

    private func setStatus(_ api: TestAPI, _ service: String, _ id: String, _ status: String) async throws {
        let response = try await api.client.post(
            "/registry/status", json: ["service_name": service, "instance_id": id, "status": status])
        #expect(response.status == .ok, "\(status): \(response.text)")
    }

    // MARK: - Resolve

    @Test func resolveAnswersAHealthyInstanceInTurnByDefault() async throws {
        try await withAPI { api in
            for id in ["web-1", "web-2", "web-3"] {
                try await api.client.registerNative(service: "web", id: id, extra: ["region": "eu", "zone": "eu-1"])
            }
            // Unhealthy instances are never answered: critical TTL check, and a STOPPING one.
            try await api.client.registerNative(service: "web", id: "web-sick", extra: ["ttl": "10s"])
            try await api.client.registerNative(service: "web", id: "web-old")
            try await setStatus(api, "web", "web-old", "STOPPING")

            let response = try await api.client.get("/registry/resolve/web")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let body = try response.object()
            #expect(body["service_name"] as? String == "web")
            #expect(body["instance_id"] as? String == "web-1")
            #expect(body["host"] as? String == "10.0.0.1")
            #expect(body["status"] as? String == "RUNNING")
            #expect(body["last_heartbeat"] != nil && body["registered_at"] != nil, "snake_case like every instance")
            #expect(response.headers[HTTPField.Name("X-Roster-In-Flight")!] == "1")

            var picks: [String: Int] = [:]
            for _ in 0..<8 {
                picks[try await resolvedID(api, "/registry/resolve/web?strategy=round_robin"), default: 0] += 1
            }
            // 9 resolves in all over three healthy instances: three each.
            picks["web-1", default: 0] += 1
            #expect(picks == ["web-1": 3, "web-2": 3, "web-3": 3])
        }
    }

    @Test func everyStrategyIsAccepted() async throws {
        try await withAPI { api in
            try await api.client.registerNative(service: "web", id: "web-1", extra: ["weight": 3, "region": "eu", "zone": "eu-1"])
            for strategy in ["round_robin", "random", "weighted", "least_connections", "region_aware", "Least-Connections"] {
                #expect(try await resolvedID(api, "/registry/resolve/web?strategy=\(strategy)&region=eu&zone=eu-1") == "web-1")
            }
        }
    }

    @Test func noHealthyInstanceIs503WithTheReason() async throws {
        try await withAPI { api in
            try await api.client.registerNative(service: "x", id: "x-1", extra: ["ttl": "10s"])
            try await api.client.registerNative(service: "x", id: "x-2", extra: ["ttl": "10s"])
            try await api.client.registerNative(service: "x", id: "x-3")
            try await setStatus(api, "x", "x-3", "STOPPING")

            let response = try await api.client.get("/registry/resolve/x")
            #expect(response.status == .serviceUnavailable)
            let error = try response.apiError()
            #expect(error.field == "service")
            #expect(error.message == "no healthy instance of 'x': 3 registered, 0 healthy (2 critical, 1 STOPPING)")

            let unknown = try await api.client.get("/registry/resolve/nothing-here?strategy=random")
            #expect(unknown.status == .serviceUnavailable)
            #expect(try unknown.apiError().message == "no healthy instance of 'nothing-here': 0 registered, 0 healthy")

            // Once a heartbeat makes one healthy, it is answered.
            let beat = try await api.client.post("/registry/heartbeat", json: ["service_name": "x", "instance_id": "x-2"])
            #expect(beat.status == .ok)
            #expect(try await resolvedID(api, "/registry/resolve/x") == "x-2")
        }
    }

    @Test func anUnknownStrategyIs400NamingTheAllowedOnes() async throws {
        try await withAPI { api in
            try await api.client.registerNative(service: "web", id: "web-1")
            let response = try await api.client.get("/registry/resolve/web?strategy=fastest")
            #expect(response.status == .badRequest)
            let error = try response.apiError()
            #expect(error.field == "strategy")
            #expect(error.message.contains("'fastest'"))
            for name in ["round_robin", "random", "weighted", "least_connections", "region_aware"] {
                #expect(error.message.contains(name), "\(error.message) names \(name)")
            }
        }
    }

    @Test func regionAwarePrefersTheCallersZoneThenRegion() async throws {
        try await withAPI { api in
            try await api.client.registerNative(service: "web", id: "eu1", extra: ["region": "eu", "zone": "eu-1"])
            try await api.client.registerNative(service: "web", id: "eu2", extra: ["region": "eu", "zone": "eu-2"])
            try await api.client.registerNative(service: "web", id: "us1", extra: ["region": "us", "zone": "us-1"])
            for _ in 0..<3 {
                #expect(try await resolvedID(api, "/registry/resolve/web?strategy=region_aware&region=eu&zone=eu-2") == "eu2")
                #expect(try await resolvedID(api, "/registry/resolve/web?strategy=region_aware&region=us&zone=us-9") == "us1")
            }
            try await setStatus(api, "web", "eu2", "STOPPING")
            for _ in 0..<3 {
                #expect(try await resolvedID(api, "/registry/resolve/web?strategy=region_aware&region=eu&zone=eu-2") == "eu1")
            }
            var anywhere = Set<String>()
            for _ in 0..<4 {
                anywhere.insert(try await resolvedID(api, "/registry/resolve/web?strategy=region_aware&region=ap&zone=ap-1"))
            }
            #expect(anywhere == ["eu1", "us1"])
        }
    }

    // MARK: - Release

    @Test func leastConnectionsAndRelease() async throws {
        try await withAPI { api in
            try await api.client.registerNative(service: "web", id: "web-1")
            try await api.client.registerNative(service: "web", id: "web-2")
            let lc = "/registry/resolve/web?strategy=least_connections"
            #expect(try await resolvedID(api, lc) == "web-1")
            #expect(try await resolvedID(api, lc) == "web-2")
            #expect(try await resolvedID(api, lc) == "web-1")  // web-1: 2, web-2: 1

            // web-2 is the least loaded until it catches up.
            #expect(try await resolvedID(api, lc) == "web-2")  // 2, 2
            var released = try await api.client.post("/registry/release", json: ["instance_id": "web-1"])
            #expect(released.status == .ok)
            var body = try released.object()
            #expect(body["instance_id"] as? String == "web-1")
            #expect(body["in_flight"] as? Int == 1)
            #expect(try await resolvedID(api, lc) == "web-1")  // 2, 2

            released = try await api.client.post("/registry/release", json: ["instance_id": "web-2"])
            #expect(try released.object()["in_flight"] as? Int == 1)
            released = try await api.client.post("/registry/release", json: ["instance_id": "web-2"])
            body = try released.object()
            #expect(body["in_flight"] as? Int == 0)

            // Nothing outstanding on web-2 any more, and nothing ever on an unknown id: 404.
            let again = try await api.client.post("/registry/release", json: ["instance_id": "web-2"])
            #expect(again.status == .notFound)
            #expect(try again.apiError().field == "instance_id")
            let ghost = try await api.client.post("/registry/release", json: ["instance_id": "ghost"])
            #expect(ghost.status == .notFound)
            #expect(try await resolvedID(api, lc) == "web-2")
        }
    }

    @Test func releaseRequiresAnInstanceID() async throws {
        try await withAPI { api in
            let missing = try await api.client.post("/registry/release", json: [:])
            #expect(missing.status == .badRequest)
            #expect(try missing.apiError().field == "instance_id")
            let garbage = try await api.client.post("/registry/release", "not json")
            #expect(garbage.status == .badRequest)
        }
    }

    // MARK: - Version ranges on the listings

    /// web-100 1.0.0, web-120 1.2.0, web-153 1.5.3 (unhealthy), web-200 2.0.0, web-rc 2.1.0-rc.1,
    /// web-v v1.9.0, web-odd "latest", web-none no version, and api-130 1.3.0 in another service.
    private func registerVersions(_ api: TestAPI) async throws {
        for (id, version) in [("web-100", "1.0.0"), ("web-120", "1.2.0"), ("web-200", "2.0.0"), ("web-rc", "2.1.0-rc.1"),
                              ("web-v", "v1.9.0"), ("web-odd", "latest")] {
            try await api.client.registerNative(service: "web", id: id, extra: ["version": version])
        }
        try await api.client.registerNative(service: "web", id: "web-153", extra: ["version": "1.5.3", "ttl": "10s"])
        try await api.client.registerNative(service: "web", id: "web-none")
        try await api.client.registerNative(service: "api", id: "api-130", extra: ["version": "1.3.0", "tags": ["primary"]])
    }

    private func encoded(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: ".-_")))!
    }

    @Test func versionRangesFilterTheListings() async throws {
        try await withAPI { api in
            try await registerVersions(api)
            let everything = ["api-130", "web-120", "web-153", "web-200", "web-v"]
            #expect(try await api.listedIDs("/registry/services?version=\(encoded(">=1.2"))") == everything)
            #expect(try await api.listedIDs("/registry/services?version=%3E%3D1.2") == everything)
            let below2 = ["api-130", "web-120", "web-153", "web-v"]
            #expect(try await api.listedIDs("/registry/services?version=\(encoded(">=1.2 <2"))") == below2)
            #expect(try await api.listedIDs("/registry/services?version=%3E%3D1.2%20%3C2") == below2)
            #expect(try await api.listedIDs("/registry/services?version=%3E%3D1.2+%3C2") == below2, "+ is a space")
            #expect(try await api.listedIDs("/registry/services?version=\(encoded("^1.2.0"))") == below2)
            #expect(try await api.listedIDs("/registry/services?version=\(encoded("~1.2"))") == ["web-120"])
            #expect(try await api.listedIDs("/registry/services?version=\(encoded("<1.2"))") == ["web-100"])
            #expect(try await api.listedIDs("/registry/services?version=\(encoded(">2"))") == [])
            #expect(try await api.listedIDs("/registry/services?version=\(encoded(">=2.1.0-rc.1"))") == ["web-rc"])
            #expect(try await api.listedIDs("/registry/services?version=\(encoded("=1.9.0"))") == ["web-v"])

            // One service's listing, and other filters, combine with the range.
            #expect(try await api.listedIDs("/registry/services/web?version=\(encoded(">=1.2 <2"))") == ["web-120", "web-153", "web-v"])
            #expect(try await api.listedIDs("/registry/services?version=\(encoded(">=1.2 <2"))&tag=primary") == ["api-130"])
            #expect(try await api.listedIDs("/registry/services?version=\(encoded(">=1.2 <2"))&healthy=true") == ["api-130", "web-120", "web-v"])
            #expect(try await api.listedIDs("/registry/services?version=\(encoded(">=1.2 <2"))&healthy=false") == ["web-153"])
        }
    }

    @Test func anExactVersionStaysAnExactStringMatch() async throws {
        try await withAPI { api in
            try await registerVersions(api)
            #expect(try await api.listedIDs("/registry/services?version=1.2.0") == ["web-120"])
            #expect(try await api.listedIDs("/registry/services?version=v1.9.0") == ["web-v"])
            #expect(try await api.listedIDs("/registry/services?version=1.9.0") == [], "no semver equivalence without an operator")
            #expect(try await api.listedIDs("/registry/services?version=latest") == ["web-odd"])
        }
    }

    @Test func anUnparsableRangeIs400() async throws {
        try await withAPI { api in
            try await registerVersions(api)
            for bad in [">=banana", ">=1.2 <", "=>1", "^"] {
                for path in ["/registry/services", "/registry/services/web"] {
                    let response = try await api.client.get("\(path)?version=\(encoded(bad))")
                    #expect(response.status == .badRequest, "\(bad): \(response.status)")
                    let error = try response.apiError()
                    #expect(error.field == "version")
                    #expect(!error.message.isEmpty)
                }
            }
        }
    }
}
