import Hummingbird
import Logging
import Prometheus
import RosterNode

/// Builds the router with every route of SPEC §2 and the middleware around them.
public enum HTTPAPI {
    public static func router(api: APIContext, prometheus: PrometheusCollectorRegistry?) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: ErrorShapingMiddleware())
        NativeRoutes(api: api).add(to: router)
        WatchRoutes(api: api).add(to: router)
        ConsulAgentRoutes(api: api).add(to: router)
        ConsulCatalogRoutes(api: api).add(to: router)
        OperationsRoutes(api: api, prometheus: prometheus).add(to: router)
        ResolveRoutes(api: api).add(to: router)
        return router
    }
}
