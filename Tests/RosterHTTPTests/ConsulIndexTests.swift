import Foundation
import HummingbirdTesting
import Testing

/// `X-Consul-Index` and blocking queries (SPEC §2b).
@Suite struct ConsulIndexTests {
    static let indexedReads = [
        "/v1/catalog/services",
        "/v1/catalog/service/alpha",
        "/v1/catalog/nodes",
        "/v1/health/service/alpha",
        "/v1/health/service/nosuch",
        "/v1/health/checks/alpha",
        "/v1/health/state/any",
        "/v1/health/state/critical",
        "/registry/services",
        "/registry/services/alpha",
    ]

    @Test(arguments: indexedReads)
    func everyReadReturnsAPositiveConsulIndex(_ path: String) async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "alpha", "ID": "alpha-1", "Port": 80, "Check": ["TTL": "10s"]])
            let response = try await api.client.get(path)
            #expect(response.status == .ok, "GET \(path): \(response.text)")
            let index = try #require(response.consulIndex, "no numeric X-Consul-Index on GET \(path)")
            #expect(index > 0)
        }
    }

    @Test func indexIsPerService() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "alpha", "ID": "alpha-1", "Port": 80])
            try await api.client.registerConsul(["Name": "beta", "ID": "beta-1", "Port": 81])
            let alphaBefore = try #require(try await api.client.get("/v1/health/service/alpha").consulIndex)
            let betaBefore = try #require(try await api.client.get("/v1/health/service/beta").consulIndex)
            let catalogBefore = try #require(try await api.client.get("/v1/catalog/services").consulIndex)

            try await api.client.registerConsul(["Name": "alpha", "ID": "alpha-2", "Port": 82])

            let alphaAfter = try #require(try await api.client.get("/v1/health/service/alpha").consulIndex)
            let betaAfter = try #require(try await api.client.get("/v1/health/service/beta").consulIndex)
            let catalogAfter = try #require(try await api.client.get("/v1/catalog/services").consulIndex)
            #expect(alphaAfter > alphaBefore, "a write to alpha raises alpha's index")
            #expect(betaAfter == betaBefore, "a write to alpha leaves beta's index alone")
            #expect(catalogAfter > catalogBefore, "the catalog as a whole changed")
            #expect(try await api.client.get("/v1/catalog/service/beta").consulIndex == betaBefore)
            #expect(try await api.client.get("/v1/health/checks/beta").consulIndex == betaBefore)
            #expect(try await api.client.get("/registry/services/beta").consulIndex == betaBefore)
        }
    }

    @Test func checkResultRaisesOnlyItsServicesIndex() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "alpha", "ID": "alpha-1", "Port": 80, "Check": ["TTL": "10s"]])
            try await api.client.registerConsul(["Name": "beta", "ID": "beta-1", "Port": 81])
            let alphaBefore = try #require(try await api.client.get("/v1/health/service/alpha").consulIndex)
            let betaBefore = try #require(try await api.client.get("/v1/health/service/beta").consulIndex)
            #expect(try await api.client.put("/v1/agent/check/pass/service:alpha-1").status == .ok)
            #expect(try #require(try await api.client.get("/v1/health/service/alpha").consulIndex) > alphaBefore)
            #expect(try await api.client.get("/v1/health/service/beta").consulIndex == betaBefore)
        }
    }

    // MARK: - Blocking queries

    @Test func blockingQueryReturnsPromptlyAfterAWriteToItsService() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "alpha", "ID": "alpha-1", "Port": 80])
            try await api.client.registerConsul(["Name": "beta", "ID": "beta-1", "Port": 81])
            let index = try #require(try await api.client.get("/v1/health/service/alpha").consulIndex)

            let clock = ContinuousClock()
            let start = clock.now
            let writer = Task {
                try await Task.sleep(for: .milliseconds(200))
                try await api.client.registerConsul(["Name": "alpha", "ID": "alpha-2", "Port": 82])
            }
            let response = try await api.client.get("/v1/health/service/alpha?index=\(index)&wait=2s")
            let elapsed = clock.now - start
            try await writer.value

            #expect(response.status == .ok)
            #expect(elapsed < .milliseconds(1_500), "returned after \(elapsed), not promptly after the write")
            #expect(try #require(response.consulIndex) > index)
            let ids = try response.array().compactMap { ($0["Service"] as? [String: Any])?["ID"] as? String }
            #expect(ids.sorted() == ["alpha-1", "alpha-2"], "the answer holds the write that woke it")
        }
    }

    @Test func blockingQueryIsNotWokenByAWriteToAnotherService() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "alpha", "ID": "alpha-1", "Port": 80])
            try await api.client.registerConsul(["Name": "beta", "ID": "beta-1", "Port": 81])
            let index = try #require(try await api.client.get("/v1/health/service/alpha").consulIndex)

            let clock = ContinuousClock()
            let start = clock.now
            let writer = Task {
                try await Task.sleep(for: .milliseconds(200))
                try await api.client.registerConsul(["Name": "beta", "ID": "beta-2", "Port": 83])
            }
            let response = try await api.client.get("/v1/health/service/alpha?index=\(index)&wait=2s")
            let elapsed = clock.now - start
            try await writer.value

            #expect(response.status == .ok)
            #expect(elapsed >= .milliseconds(1_500), "returned after \(elapsed): a write to beta woke a watch on alpha")
            #expect(elapsed < .seconds(5), "returned after \(elapsed), long after the 2 s wait")
            #expect(response.consulIndex == index)
            let betaIndex = try #require(try await api.client.get("/v1/health/service/beta").consulIndex)
            #expect(betaIndex > index, "the write to beta did happen")
        }
    }

    @Test func blockingCatalogQueryIsWokenByAWriteToAnyService() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "alpha", "ID": "alpha-1", "Port": 80])
            let index = try #require(try await api.client.get("/v1/catalog/services").consulIndex)

            let clock = ContinuousClock()
            let start = clock.now
            let writer = Task {
                try await Task.sleep(for: .milliseconds(200))
                try await api.client.registerConsul(["Name": "gamma", "ID": "gamma-1", "Port": 82])
            }
            let response = try await api.client.get("/v1/catalog/services?index=\(index)&wait=2s")
            let elapsed = clock.now - start
            try await writer.value

            #expect(elapsed < .milliseconds(1_500), "returned after \(elapsed), not promptly after the write")
            #expect(try #require(response.consulIndex) > index)
            let services = try #require(try response.json() as? [String: [String]])
            #expect(services["gamma"] != nil, "the answer holds the write that woke it: \(services)")
        }
    }

    @Test func blockingQueryWithAStaleIndexReturnsAtOnce() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "alpha", "ID": "alpha-1", "Port": 80])
            try await api.client.registerConsul(["Name": "alpha", "ID": "alpha-2", "Port": 81])
            let current = try #require(try await api.client.get("/v1/health/service/alpha").consulIndex)
            #expect(current > 1)

            let clock = ContinuousClock()
            let start = clock.now
            let response = try await api.client.get("/v1/health/service/alpha?index=\(current - 1)&wait=2s")
            #expect(clock.now - start < .milliseconds(1_000))
            #expect(response.consulIndex == current)
        }
    }

    @Test(arguments: [("index=abc", "index"), ("index=1&wait=soon", "wait")])
    func malformedBlockingParametersAre400(_ query: String, _ field: String) async throws {
        try await withAPI { api in
            let response = try await api.client.get("/v1/health/service/alpha?\(query)")
            #expect(response.status == .badRequest)
            #expect(try response.apiError().field == field)
        }
    }
}
