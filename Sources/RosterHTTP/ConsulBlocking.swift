import HTTPTypes
import Hummingbird
import HummingbirdCore
import RosterCore
import RosterNode

/// Consul's response headers.
enum ConsulHeaders {
    static let index = HTTPField.Name("X-Consul-Index")!
    static let knownLeader = HTTPField.Name("X-Consul-KnownLeader")!
    static let lastContact = HTTPField.Name("X-Consul-LastContact")!

    /// There is no leader to lose contact with, so every node is always in the know.
    static func index(_ value: UInt64) -> HTTPFields {
        [index: String(value), knownLeader: "true", lastContact: "0"]
    }
}

/// Consul blocking queries: `?index=N&wait=30s` returns once the scope's index exceeds N, or when
/// the wait runs out. Waits are capped at 10 minutes and get up to 1/16 of jitter added, as
/// Consul does, so that many watchers started together do not all return together.
enum BlockingQuery {
    static let defaultWait = GoDuration(milliseconds: 5 * 60_000)
    static let maxWait = GoDuration(milliseconds: 10 * 60_000)

    static func waitIfAsked(_ request: Request, api: APIContext, scope: WatchScope) async throws {
        let query = request.uri.form
        guard let indexText = query.get("index") else { return }
        guard let index = UInt64(indexText) else {
            throw APIError(.badRequest, field: "index", message: "'\(indexText)' is not a non-negative integer")
        }
        var wait = defaultWait
        if let waitText = query.get("wait") {
            guard let parsed = GoDuration(parsing: waitText) else {
                throw APIError(.badRequest, field: "wait", message: "'\(waitText)' is not a duration such as \"30s\"")
            }
            wait = min(parsed, maxWait)
        }
        guard index > 0 else { return }
        let jitter = wait.milliseconds / 16 > 0 ? Int64.random(in: 0...(wait.milliseconds / 16)) : 0
        _ = await api.registry.waitForChange(scope, after: index, timeout: .milliseconds(wait.milliseconds + jitter))
    }
}
