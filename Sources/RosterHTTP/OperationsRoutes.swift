import Hummingbird
import Prometheus
import RosterNode

/// `/health` and `/metrics`.
struct OperationsRoutes {
    let api: APIContext
    let prometheus: PrometheusCollectorRegistry?

    func add(to router: Router<BasicRequestContext>) {
        router.get("health") { _, _ in
            struct Health: Encodable {
                var status: String
                var node: String
                var instances: Int
                var index: UInt64
                var cluster: ClusterHealth
                /// TTL expiry and removal of critical instances paused: most members unreachable.
                var selfPreservation: Bool

                enum CodingKeys: String, CodingKey {
                    case status, node, instances, index, cluster, selfPreservation = "self_preservation"
                }
            }
            let registry = api.registry
            return try JSONSupport.response(
                Health(
                    status: "ok", node: api.node.name, instances: await registry.instanceCount,
                    index: await registry.modifyIndex, cluster: await api.clusterHealth(),
                    selfPreservation: await registry.isSelfPreserving))
        }
        router.get("metrics") { _, _ in
            var bytes: [UInt8] = []
            prometheus?.emit(into: &bytes)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }
}
