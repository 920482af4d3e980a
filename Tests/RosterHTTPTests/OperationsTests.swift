import Foundation
import HummingbirdTesting
import Metrics
import Prometheus
import Testing

/// `/health`, `/metrics` and what any unknown route answers (SPEC §2c).
@Suite struct OperationsTests {
    @Test func healthAnswers200WithTheNodeName() async throws {
        try await withAPI { api in
            let response = try await api.client.get("/health")
            #expect(response.status == .ok)
            let body = try response.object()
            #expect(body["status"] as? String == "ok")
            #expect(body["node"] as? String == TestNode.name)
        }
    }

    /// The registry's gauges are created through swift-metrics' current factory. Binding a
    /// Prometheus factory to this task (`withMetricsFactory`) avoids `MetricsSystem.bootstrap`,
    /// which may run only once per process and would leak into every other test.
    @Test func metricsServesRosterInstancesAfterARegistration() async throws {
        let prometheus = PrometheusCollectorRegistry()
        try await withMetricsFactory(PrometheusMetricsFactory(registry: prometheus)) {
            try await withAPI(prometheus: prometheus) { api in
                try await api.client.registerNative(service: "metered", id: "metered-1")
                let response = try await api.client.get("/metrics")
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
                let text = response.text
                let line = text.split(separator: "\n").first {
                    $0.hasPrefix("roster_instances{") && $0.contains(#"service="metered""#)
                        && $0.contains(#"status="RUNNING""#)
                }
                let value = line?.split(separator: " ").last.flatMap { Double($0) }
                #expect(value == 1, "no roster_instances gauge of 1 for metered in:\n\(text)")

                let gone = try await api.client.post(
                    "/registry/deregister", json: ["service_name": "metered", "instance_id": "metered-1"])
                #expect(gone.status == .ok)
                let after = try await api.client.get("/metrics").text
                let lineAfter = after.split(separator: "\n").first {
                    $0.hasPrefix("roster_instances{") && $0.contains(#"service="metered""#)
                        && $0.contains(#"status="RUNNING""#)
                }
                #expect(lineAfter?.split(separator: " ").last.flatMap { Double($0) } == 0, "the gauge falls back to 0")
            }
        }
    }

    @Test func metricsWithoutACollectorIsAnEmptyPage() async throws {
        try await withAPI { api in
            let response = try await api.client.get("/metrics")
            #expect(response.status == .ok)
            #expect(response.body.readableBytes == 0)
        }
    }

    @Test(arguments: [("/nope", "GET"), ("/v1/agent/nope", "GET"), ("/v1/agent/nope", "PUT")])
    func unknownRouteIs404WithAJSONError(_ path: String, _ method: String) async throws {
        try await withAPI { api in
            let response = try await api.client.execute(uri: path, method: .init(method)!)
            #expect(response.status == .notFound)
            #expect(response.headers[.contentType] == "application/json")
            #expect(try response.apiError().field == "path")
        }
    }
}
