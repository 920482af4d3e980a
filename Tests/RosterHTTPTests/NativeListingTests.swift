import Foundation
import HummingbirdTesting
import Testing

/// The native listings and their filters (SPEC §2a).
@Suite struct NativeListingTests {
    /// Four instances that differ in every filtered field:
    ///
    /// | id    | service | tags             | capabilities | version | deployment | region | zone | status   | checks   |
    /// |-------|---------|------------------|--------------|---------|------------|--------|------|----------|----------|
    /// | web-1 | web     | primary, v1      | grpc         | 1.0.0   | blue       | eu     | eu-1 | RUNNING  | none     |
    /// | web-2 | web     | canary           | http         | 2.0.0   | green      | us     | us-1 | RUNNING  | none     |
    /// | web-3 | web     | primary          | grpc, http   | 2.0.0   | green      | eu     | eu-2 | STARTING | none     |
    /// | api-1 | api     | primary          | none         | 1.0.0   | absent     | eu     | eu-1 | RUNNING  | critical |
    static func registerFixture(_ api: TestAPI) async throws {
        try await api.client.registerNative(
            service: "web", id: "web-1",
            extra: [
                "tags": ["primary", "v1"], "capabilities": ["grpc"], "version": "1.0.0", "deployment": "blue",
                "region": "eu", "zone": "eu-1",
            ])
        try await api.client.registerNative(
            service: "web", id: "web-2",
            extra: [
                "tags": ["canary"], "capabilities": ["http"], "version": "2.0.0", "deployment": "green",
                "region": "us", "zone": "us-1",
            ])
        try await api.client.registerNative(
            service: "web", id: "web-3",
            extra: [
                "tags": ["primary"], "capabilities": ["grpc", "http"], "version": "2.0.0", "deployment": "green",
                "region": "eu", "zone": "eu-2", "status": "STARTING",
            ])
        // A TTL check starts critical, so api-1 is RUNNING but not healthy.
        try await api.client.registerNative(
            service: "api", id: "api-1",
            extra: ["tags": ["primary"], "version": "1.0.0", "region": "eu", "zone": "eu-1", "ttl": "10s"])
    }

    @Test func servicesListingGroupsInstancesByService() async throws {
        try await withAPI { api in
            try await Self.registerFixture(api)
            let response = try await api.client.get("/registry/services")
            #expect(response.status == .ok)
            let services = try #require(try response.object()["services"] as? [String: [[String: Any]]])
            #expect(Set(services.keys) == ["web", "api"])
            #expect(
                Set(services["web"]?.compactMap { $0["instance_id"] as? String } ?? []) == ["web-1", "web-2", "web-3"])
            #expect(services["api"]?.compactMap { $0["instance_id"] as? String } == ["api-1"])
        }
    }

    @Test func serviceListingNamesTheServiceAndListsOnlyItsInstances() async throws {
        try await withAPI { api in
            try await Self.registerFixture(api)
            let response = try await api.client.get("/registry/services/api")
            #expect(response.status == .ok)
            let body = try response.object()
            #expect(body["service"] as? String == "api")
            #expect(try await api.listedIDs("/registry/services/api") == ["api-1"])
            #expect(try await api.listedIDs("/registry/services/nosuch") == [], "an unknown service lists nothing")
        }
    }

    /// One filter, and what it must leave in the all-services and the `web` listing.
    struct FilterCase: Sendable, CustomTestStringConvertible {
        var query: String
        var all: [String]
        var web: [String]
        var testDescription: String { query }
    }

    static let filterCases: [FilterCase] = [
        FilterCase(query: "tag=primary", all: ["api-1", "web-1", "web-3"], web: ["web-1", "web-3"]),
        FilterCase(query: "tag=canary", all: ["web-2"], web: ["web-2"]),
        FilterCase(query: "capability=grpc", all: ["web-1", "web-3"], web: ["web-1", "web-3"]),
        FilterCase(query: "capability=http", all: ["web-2", "web-3"], web: ["web-2", "web-3"]),
        FilterCase(query: "version=2.0.0", all: ["web-2", "web-3"], web: ["web-2", "web-3"]),
        FilterCase(query: "version=1.0.0", all: ["api-1", "web-1"], web: ["web-1"]),
        FilterCase(query: "deployment=green", all: ["web-2", "web-3"], web: ["web-2", "web-3"]),
        FilterCase(query: "deployment=blue", all: ["web-1"], web: ["web-1"]),
        FilterCase(query: "region=eu", all: ["api-1", "web-1", "web-3"], web: ["web-1", "web-3"]),
        FilterCase(query: "zone=eu-1", all: ["api-1", "web-1"], web: ["web-1"]),
        FilterCase(query: "zone=us-1", all: ["web-2"], web: ["web-2"]),
        FilterCase(query: "status=STARTING", all: ["web-3"], web: ["web-3"]),
        FilterCase(query: "status=RUNNING", all: ["api-1", "web-1", "web-2"], web: ["web-1", "web-2"]),
        FilterCase(query: "healthy=true", all: ["web-1", "web-2"], web: ["web-1", "web-2"]),
        FilterCase(query: "tag=nosuch", all: [], web: []),
        // Combined filters intersect.
        FilterCase(query: "tag=primary&region=eu&deployment=green", all: ["web-3"], web: ["web-3"]),
        FilterCase(query: "tag=primary&healthy=true", all: ["web-1"], web: ["web-1"]),
        FilterCase(query: "capability=http&version=2.0.0&status=RUNNING", all: ["web-2"], web: ["web-2"]),
        FilterCase(query: "region=eu&zone=eu-1&version=1.0.0", all: ["api-1", "web-1"], web: ["web-1"]),
        FilterCase(query: "deployment=blue&zone=us-1", all: [], web: []),
    ]

    @Test(arguments: filterCases)
    func listingFiltersNarrowTheAnswer(_ filter: FilterCase) async throws {
        try await withAPI { api in
            try await Self.registerFixture(api)
            #expect(try await api.listedIDs("/registry/services?\(filter.query)") == filter.all)
            #expect(try await api.listedIDs("/registry/services/web?\(filter.query)") == filter.web)
        }
    }

    @Test func statusFilterFollowsAStatusChange() async throws {
        try await withAPI { api in
            try await Self.registerFixture(api)
            let moved = try await api.client.post(
                "/registry/status", json: ["service_name": "web", "instance_id": "web-1", "status": "STOPPING"])
            #expect(moved.status == .ok)
            #expect(try await api.listedIDs("/registry/services?status=STOPPING") == ["web-1"])
            #expect(try await api.listedIDs("/registry/services/web?status=RUNNING") == ["web-2"])
            #expect(try await api.listedIDs("/registry/services/web?healthy=true") == ["web-2"])
        }
    }

    @Test(arguments: [
        ("status=BOGUS", "status"), ("deployment=purple", "deployment"), ("healthy=maybe", "healthy"),
    ])
    func invalidFilterValueIs400NamingTheFilter(_ query: String, _ field: String) async throws {
        try await withAPI { api in
            try await Self.registerFixture(api)
            for uri in ["/registry/services?\(query)", "/registry/services/web?\(query)"] {
                let response = try await api.client.get(uri)
                #expect(response.status == .badRequest, "GET \(uri)")
                #expect(try response.apiError().field == field, "GET \(uri)")
            }
        }
    }

    @Test func unknownInstanceLookupIs404() async throws {
        try await withAPI { api in
            let response = try await api.client.get("/registry/instance/nope")
            #expect(response.status == .notFound)
            #expect(try response.apiError().field == "instance_id")
        }
    }
}
