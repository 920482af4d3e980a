import Foundation
import HummingbirdTesting
import Testing

/// Consul's agent, catalog and health endpoints (SPEC §2b).
@Suite struct ConsulAgentTests {
    // MARK: - Registration

    @Test func registerAcceptsLowercaseKeys() async throws {
        try await withAPI { api in
            let response = try await api.client.registerConsul([
                "name": "db", "id": "db-1", "port": 5432, "tags": ["pg"],
            ])
            #expect(response.status == .ok)
            let services = try await api.client.get("/v1/agent/services").object()
            let db = try #require(services["db-1"] as? [String: Any], "\(services)")
            #expect(db["ID"] as? String == "db-1")
            #expect(db["Service"] as? String == "db")
            #expect(db["Port"] as? Int == 5432)
            #expect(db["Tags"] as? [String] == ["pg"])
            #expect(db["Address"] as? String == TestNode.address, "a missing address defaults to the agent's")
        }
    }

    @Test func registerAcceptsPascalCaseKeys() async throws {
        try await withAPI { api in
            try await api.client.registerConsul([
                "Name": "cache", "ID": "cache-1", "Port": 6379, "Address": "10.1.2.3", "Tags": ["a", "b"],
                "Meta": ["team": "core"],
            ])
            let services = try await api.client.get("/v1/agent/services").object()
            let cache = try #require(services["cache-1"] as? [String: Any], "\(services)")
            #expect(cache["Service"] as? String == "cache")
            #expect(cache["Port"] as? Int == 6379)
            #expect(cache["Address"] as? String == "10.1.2.3")
            #expect(cache["Meta"] as? [String: String] == ["team": "core"])

            // The same instance is visible through the native API.
            let native = try await api.client.get("/registry/instance/cache-1")
            #expect(native.status == .ok)
            #expect(try native.object()["service_name"] as? String == "cache")
        }
    }

    @Test func registerWithoutIDUsesTheNameAsID() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "solo", "Port": 1234])
            let services = try await api.client.get("/v1/agent/services").object()
            #expect(Set(services.keys) == ["solo"])
        }
    }

    @Test func agentServicesListsEveryRegisteredService() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["name": "db", "id": "db-1", "port": 5432])
            try await api.client.registerConsul(["Name": "cache", "ID": "cache-1", "Port": 6379])
            try await api.client.registerNative(service: "web", id: "web-1")
            let services = try await api.client.get("/v1/agent/services")
            #expect(services.status == .ok)
            #expect(Set(try services.object().keys) == ["db-1", "cache-1", "web-1"])
        }
    }

    @Test func agentServiceByIDAnswersTheServiceOr404() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "db", "ID": "db-1", "Port": 5432])
            let found = try await api.client.get("/v1/agent/service/db-1")
            #expect(found.status == .ok)
            #expect(try found.object()["Service"] as? String == "db")
            let missing = try await api.client.get("/v1/agent/service/db-9")
            #expect(missing.status == .notFound)
        }
    }

    @Test func registerWithAnEmptyCheckObjectAddsNoServiceCheck() async throws {
        try await withAPI { api in
            // py-consul sends `"Check": {}` for a service without a check.
            try await api.client.registerConsul(["Name": "db", "ID": "db-1", "Port": 5432, "Check": [String: Any]()])
            let checks = try await api.health("db").flatMap { ($0["Checks"] as? [[String: Any]]) ?? [] }
            #expect(checks.compactMap { $0["CheckID"] as? String } == ["serfHealth"])
            #expect(try await api.health("db", query: "?passing").count == 1)
        }
    }

    @Test func deregisterRemovesTheService() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "db", "ID": "db-1", "Port": 5432])
            let response = try await api.client.put("/v1/agent/service/deregister/db-1")
            #expect(response.status == .ok)
            #expect(try await api.client.get("/v1/agent/services").object().isEmpty)
            #expect(try await api.health("db").isEmpty)
            let catalog = try #require(try await api.client.get("/v1/catalog/services").json() as? [String: [String]])
            #expect(catalog["db"] == nil, "a service without instances leaves the catalog: \(catalog)")
            let again = try await api.client.put("/v1/agent/service/deregister/db-1")
            #expect(again.status == .notFound)
        }
    }

    // MARK: - Catalog

    @Test func catalogServicesListsEachServiceWithItsTags() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["name": "db", "id": "db-1", "port": 5432])
            try await api.client.registerConsul(["Name": "cache", "ID": "cache-1", "Port": 6379, "Tags": ["b", "a"]])
            try await api.client.registerConsul(["Name": "cache", "ID": "cache-2", "Port": 6380, "Tags": ["c", "a"]])
            let response = try await api.client.get("/v1/catalog/services")
            #expect(response.status == .ok)
            let services = try #require(try response.json() as? [String: [String]], "\(response.text)")
            #expect(services["db"] == [])
            #expect(services["cache"].map(Set.init) == ["a", "b", "c"], "tags of all instances, each once")
            #expect(services.count == 2)
        }
    }

    @Test func catalogServiceListsInstancesWithNodeAndPort() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "cache", "ID": "cache-1", "Port": 6379, "Tags": ["a"]])
            let entries = try await api.client.get("/v1/catalog/service/cache").array()
            #expect(entries.count == 1)
            #expect(entries.first?["ServiceID"] as? String == "cache-1")
            #expect(entries.first?["ServicePort"] as? Int == 6379)
            #expect(entries.first?["Node"] as? String == TestNode.name)
            #expect(entries.first?["Datacenter"] as? String == TestNode.datacenter)
        }
    }

    // MARK: - Health

    @Test func healthServiceHasServiceNodeAndSerfAndServiceChecks() async throws {
        try await withAPI { api in
            try await api.client.registerConsul([
                "Name": "pay", "ID": "pay-1", "Port": 9000, "Check": ["TTL": "10s"],
            ])
            let entries = try await api.health("pay")
            let entry = try #require(entries.first)
            #expect(entries.count == 1)
            #expect((entry["Service"] as? [String: Any])?["ID"] as? String == "pay-1")
            #expect((entry["Service"] as? [String: Any])?["Service"] as? String == "pay")
            #expect((entry["Node"] as? [String: Any])?["Node"] as? String == TestNode.name)
            #expect((entry["Node"] as? [String: Any])?["Address"] as? String == TestNode.address)
            let checks = try #require(entry["Checks"] as? [[String: Any]])
            let ids = checks.compactMap { $0["CheckID"] as? String }
            #expect(ids.contains("serfHealth"))
            #expect(ids.contains("service:pay-1"))
            #expect(checks.first { $0["CheckID"] as? String == "serfHealth" }?["Status"] as? String == "passing")
            #expect(checks.first { $0["CheckID"] as? String == "service:pay-1" }?["ServiceID"] as? String == "pay-1")
        }
    }

    @Test func healthOfAnUnknownServiceIsAnEmptyList() async throws {
        try await withAPI { api in
            let response = try await api.client.get("/v1/health/service/nosuch")
            #expect(response.status == .ok)
            #expect(try response.array().isEmpty)
        }
    }

    @Test func severalChecksAreNumberedFromOne() async throws {
        try await withAPI { api in
            try await api.client.registerConsul([
                "Name": "multi", "ID": "multi-1", "Port": 9000,
                "Checks": [["TTL": "10s"], ["TTL": "30s", "Name": "second"]],
            ])
            let checks = try await api.health("multi").flatMap { ($0["Checks"] as? [[String: Any]]) ?? [] }
            let ids = Set(checks.compactMap { $0["CheckID"] as? String })
            #expect(ids == ["serfHealth", "service:multi-1:1", "service:multi-1:2"])
        }
    }

    @Test func checkAndChecksTogetherAreNumberedWithTheSingleCheckFirst() async throws {
        try await withAPI { api in
            try await api.client.registerConsul([
                "Name": "multi", "ID": "multi-1", "Port": 9000,
                "Check": ["TTL": "5s", "Name": "single"], "Checks": [["TTL": "30s", "Name": "listed"]],
            ])
            let one = try await api.check("service:multi-1:1", of: "multi")
            let two = try await api.check("service:multi-1:2", of: "multi")
            #expect(one["Name"] as? String == "single")
            #expect(two["Name"] as? String == "listed")
        }
    }

    @Test func healthServiceFiltersByTag() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "web", "ID": "web-1", "Port": 80, "Tags": ["blue"]])
            try await api.client.registerConsul(["Name": "web", "ID": "web-2", "Port": 81, "Tags": ["green"]])
            let entries = try await api.health("web", query: "?tag=green")
            #expect(entries.compactMap { ($0["Service"] as? [String: Any])?["ID"] as? String } == ["web-2"])
        }
    }

    @Test func healthServiceFiltersByRepeatedTagsAsAnIntersection() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "web", "ID": "web-1", "Port": 80, "Tags": ["a", "b"]])
            try await api.client.registerConsul(["Name": "web", "ID": "web-2", "Port": 81, "Tags": ["a"]])
            func ids(_ entries: [[String: Any]]) -> [String] {
                entries.compactMap { ($0["Service"] as? [String: Any])?["ID"] as? String }.sorted()
            }
            #expect(ids(try await api.health("web", query: "?tag=a")) == ["web-1", "web-2"])
            #expect(ids(try await api.health("web", query: "?tag=a&tag=b")) == ["web-1"])
        }
    }

    /// A tag may contain a comma. Asking for the single tag "a,b" must not be answered with the
    /// result of asking for the two tags "a" and "b", nor the other way round. Each answer is
    /// right whichever is asked first, though answers are cached.
    @Test(arguments: [true, false])
    func healthServiceTellsATagWithACommaFromTwoTags(commaTagFirst: Bool) async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "web", "ID": "web-1", "Port": 80, "Tags": ["a", "b"]])
            try await api.client.registerConsul(["Name": "web", "ID": "web-2", "Port": 81, "Tags": ["a,b"]])
            @Sendable func ids(_ query: String) async throws -> [String] {
                try await api.health("web", query: query)
                    .compactMap { ($0["Service"] as? [String: Any])?["ID"] as? String }.sorted()
            }
            let commaTag = "?tag=a%2Cb", twoTags = "?tag=a&tag=b"
            let (first, second) = commaTagFirst ? (commaTag, twoTags) : (twoTags, commaTag)
            let expected = [commaTag: ["web-2"], twoTags: ["web-1"]]
            #expect(try await ids(first) == expected[first], "asked first, before anything is cached")
            #expect(try await ids(second) == expected[second], "asked second, with the first answer cached")
        }
    }

    @Test func instanceThatIsNotRunningFailsConsulsPassingFilter() async throws {
        try await withAPI { api in
            try await api.client.registerNative(service: "web", id: "web-1")
            try await api.client.registerNative(service: "web", id: "web-2")
            let moved = try await api.client.post(
                "/registry/status", json: ["service_name": "web", "instance_id": "web-2", "status": "STOPPING"])
            #expect(moved.status == .ok)
            let passing = try await api.health("web", query: "?passing")
            #expect(passing.compactMap { ($0["Service"] as? [String: Any])?["ID"] as? String } == ["web-1"])
            let entry = try #require(
                try await api.health("web").first { ($0["Service"] as? [String: Any])?["ID"] as? String == "web-2" })
            let checks = (entry["Checks"] as? [[String: Any]]) ?? []
            #expect(
                checks.contains { $0["Status"] as? String == "critical" },
                "a STOPPING instance carries a critical check")
        }
    }

    // MARK: - TTL checks

    @Test func ttlCheckStartsCriticalAndPassWithNoteMakesItPassing() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "pay", "ID": "pay-1", "Port": 9000, "Check": ["TTL": "10s"]])
            #expect(try await api.check("service:pay-1", of: "pay")["Status"] as? String == "critical")

            let pass = try await api.client.put("/v1/agent/check/pass/service:pay-1?note=ok")
            #expect(pass.status == .ok)
            let check = try await api.check("service:pay-1", of: "pay")
            #expect(check["Status"] as? String == "passing")
            #expect(check["Output"] as? String == "ok")

            let agentChecks = try await api.client.get("/v1/agent/checks").object()
            #expect((agentChecks["service:pay-1"] as? [String: Any])?["Status"] as? String == "passing")
        }
    }

    @Test func warnAndFailMoveTheCheck() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "pay", "ID": "pay-1", "Port": 9000, "Check": ["TTL": "10s"]])
            #expect(try await api.client.put("/v1/agent/check/warn/service:pay-1?note=slow").status == .ok)
            var check = try await api.check("service:pay-1", of: "pay")
            #expect(check["Status"] as? String == "warning")
            #expect(check["Output"] as? String == "slow")
            #expect(try await api.client.put("/v1/agent/check/fail/service:pay-1?note=disk+full").status == .ok)
            check = try await api.check("service:pay-1", of: "pay")
            #expect(check["Status"] as? String == "critical")
            #expect(check["Output"] as? String == "disk full", "a '+' in a query is a space, as in Go's url.ParseQuery")
        }
    }

    @Test func passingQueryExcludesAFailingInstanceAndIncludesAPassingOne() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "pay", "ID": "pay-1", "Port": 9000, "Check": ["TTL": "10s"]])
            try await api.client.registerConsul(["Name": "pay", "ID": "pay-2", "Port": 9001, "Check": ["TTL": "10s"]])
            #expect(try await api.client.put("/v1/agent/check/pass/service:pay-1").status == .ok)

            func ids(_ entries: [[String: Any]]) -> [String] {
                entries.compactMap { ($0["Service"] as? [String: Any])?["ID"] as? String }.sorted()
            }
            #expect(ids(try await api.health("pay")) == ["pay-1", "pay-2"])
            #expect(ids(try await api.health("pay", query: "?passing")) == ["pay-1"])
            #expect(ids(try await api.health("pay", query: "?passing=true")) == ["pay-1"])
            #expect(ids(try await api.health("pay", query: "?passing=false")) == ["pay-1", "pay-2"])

            #expect(try await api.client.put("/v1/agent/check/pass/service:pay-2").status == .ok)
            #expect(ids(try await api.health("pay", query: "?passing")) == ["pay-1", "pay-2"])
        }
    }

    @Test func checkUpdateSetsStatusAndOutput() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "pay", "ID": "pay-1", "Port": 9000, "Check": ["TTL": "10s"]])
            let response = try await api.client.put(
                "/v1/agent/check/update/service:pay-1", json: ["Status": "warning", "Output": "x"])
            #expect(response.status == .ok)
            let check = try await api.check("service:pay-1", of: "pay")
            #expect(check["Status"] as? String == "warning")
            #expect(check["Output"] as? String == "x")
            #expect(try await api.health("pay", query: "?passing").isEmpty, "a warning is not passing")
        }
    }

    @Test func checkUpdateWithAnUnknownStatusIs400() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "pay", "ID": "pay-1", "Port": 9000, "Check": ["TTL": "10s"]])
            let response = try await api.client.put(
                "/v1/agent/check/update/service:pay-1", json: ["Status": "sleepy"])
            #expect(response.status == .badRequest)
            #expect(try response.apiError().field == "Status")
            #expect(try await api.check("service:pay-1", of: "pay")["Status"] as? String == "critical")
        }
    }

    @Test(arguments: ["pass", "warn", "fail"])
    func unknownCheckIs404(_ verb: String) async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "pay", "ID": "pay-1", "Port": 9000, "Check": ["TTL": "10s"]])
            let response = try await api.client.put("/v1/agent/check/\(verb)/service:nope?note=x")
            #expect(response.status == .notFound)
            #expect(try response.apiError().field == "check_id")
            let update = try await api.client.put("/v1/agent/check/update/nope", json: ["Status": "passing"])
            #expect(update.status == .notFound)
        }
    }

    @Test func healthChecksAndHealthStateListChecksByService() async throws {
        try await withAPI { api in
            try await api.client.registerConsul(["Name": "pay", "ID": "pay-1", "Port": 9000, "Check": ["TTL": "10s"]])
            try await api.client.registerConsul(["Name": "pay", "ID": "pay-2", "Port": 9001, "Check": ["TTL": "10s"]])
            #expect(try await api.client.put("/v1/agent/check/pass/service:pay-1").status == .ok)

            let checks = try await api.client.get("/v1/health/checks/pay").array()
            #expect(Set(checks.compactMap { $0["CheckID"] as? String }) == ["service:pay-1", "service:pay-2"])

            let critical = try await api.client.get("/v1/health/state/critical").array()
            #expect(critical.compactMap { $0["CheckID"] as? String } == ["service:pay-2"])
            let passing = try await api.client.get("/v1/health/state/passing").array()
            #expect(passing.compactMap { $0["CheckID"] as? String } == ["service:pay-1"])
            let any = try await api.client.get("/v1/health/state/any").array()
            #expect(any.count == 2)

            let bogus = try await api.client.get("/v1/health/state/sleepy")
            #expect(bogus.status == .badRequest)
            #expect(try bogus.apiError().field == "state")
        }
    }

    @Test func catalogNodesListsThisNode() async throws {
        try await withAPI { api in
            let nodes = try await api.client.get("/v1/catalog/nodes").array()
            #expect(nodes.compactMap { $0["Node"] as? String } == [TestNode.name])
            #expect(nodes.first?["Address"] as? String == TestNode.address)
            #expect(nodes.first?["Datacenter"] as? String == TestNode.datacenter)
        }
    }

    // MARK: - Agent and status

    @Test func agentSelfReportsConfigAndMember() async throws {
        try await withAPI { api in
            let response = try await api.client.get("/v1/agent/self")
            #expect(response.status == .ok)
            let body = try response.object()
            let config = try #require(body["Config"] as? [String: Any])
            #expect(config["NodeName"] as? String == TestNode.name)
            #expect(config["Datacenter"] as? String == TestNode.datacenter)
            let member = try #require(body["Member"] as? [String: Any])
            #expect(member["Name"] as? String == TestNode.name)
            #expect(member["Status"] as? Int == 1)
        }
    }

    @Test func agentMembersReportsThisNodeAlive() async throws {
        try await withAPI { api in
            let members = try await api.client.get("/v1/agent/members").array()
            #expect(members.count == 1)
            #expect(members.first?["Name"] as? String == TestNode.name)
            #expect(members.first?["Addr"] as? String == TestNode.address)
            #expect(members.first?["Status"] as? Int == 1)
        }
    }

    @Test func statusLeaderIsANonEmptyAddress() async throws {
        try await withAPI { api in
            let response = try await api.client.get("/v1/status/leader")
            #expect(response.status == .ok)
            let leader = try #require(try response.json() as? String, "\(response.text)")
            #expect(!leader.isEmpty)
            #expect(leader == "\(TestNode.address):\(TestNode.clusterPort)")
            let peers = try #require(try await api.client.get("/v1/status/peers").json() as? [String])
            #expect(peers == [leader])
        }
    }
}
