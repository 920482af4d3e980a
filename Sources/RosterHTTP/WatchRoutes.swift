import Foundation
import HTTPTypes
import Hummingbird
import RosterCore
import RosterNode

/// `GET /registry/watch[?service=NAME]`: server-sent events, one per change.
///
/// Each event's id is the change's modify index. A client that reconnects with `Last-Event-ID`
/// first gets the latest state of everything that changed after that id, so it misses nothing;
/// if that can't be reconstructed (a deletion it missed was collected) it gets a `resync` event
/// and should re-read the listing. A slow client gets coalesced events (the latest state of each
/// instance) and, if it falls far behind, a `resync`; it never slows writers or other watchers.
/// A comment line goes out every `keepAlive` so proxies keep the connection open.
struct WatchRoutes {
    let api: APIContext
    var keepAlive: Duration = .seconds(15)

    func add(to router: Router<BasicRequestContext>) {
        router.get("registry/watch") { request, _ in try await watch(request) }
    }

    func watch(_ request: Request) async throws -> Response {
        let service = request.uri.form.get("service").flatMap { $0.isEmpty ? nil : $0 }
        if let service { try api.validator.validateServiceName(service, field: "service") }
        var lastEventID: UInt64?
        if let text = request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.form.get("last_event_id") {
            guard let id = UInt64(text) else {
                throw APIError(.badRequest, field: "Last-Event-ID", message: "'\(text)' is not an event id from this stream")
            }
            lastEventID = id
        }
        // Subscribe before reading the catch-up, so nothing falls between the two.
        let subscription = api.registry.feed.subscribe(service: service)
        var catchUp: (events: [ChangeEvent], complete: Bool)?
        if let lastEventID { catchUp = await api.registry.changes(since: lastEventID, service: service) }
        let keepAlive = self.keepAlive
        let replay = catchUp
        let body = ResponseBody { writer in
            let nudger = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: keepAlive)
                    subscription.nudge()
                }
            }
            defer { nudger.cancel() }
            try await writer.write(ByteBuffer(string: ": watching \(service ?? "every service")\n\n"))
            if let catchUp = replay {
                for event in catchUp.events { try await writer.write(ServerSentEvent.encode(event)) }
                if !catchUp.complete { try await writer.write(ServerSentEvent.resync(reason: "missed changes were collected")) }
            }
            while let item = await subscription.next() {
                switch item {
                case .change(let event): try await writer.write(ServerSentEvent.encode(event))
                case .overflowed: try await writer.write(ServerSentEvent.resync(reason: "this watcher fell behind"))
                case .idle: try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body)
    }
}

/// The text form of one event (the SSE wire format: `id`, `event`, `data`, blank line).
///
/// Every watcher of a change gets the same bytes, so each event is encoded once and the bytes are
/// shared: with 1,000 watchers, encoding per watcher made a watched service's writes 25× slower.
enum ServerSentEvent {
    /// Recently encoded events by index. Small: watchers read an event within moments of each other.
    private static let recent = EncodedEvents(capacity: 256)
    struct Payload: Encodable {
        var index: UInt64
        var kind: String
        var serviceName: String
        var instanceID: String
        var instance: ServiceInstance?

        enum CodingKeys: String, CodingKey {
            case index, kind, serviceName = "service_name", instanceID = "instance_id", instance
        }
    }

    static func encode(_ event: ChangeEvent) throws -> ByteBuffer {
        if let cached = recent.get(event) { return cached }
        let encoded = try encodeFresh(event)
        recent.put(event, encoded)
        return encoded
    }

    private static func encodeFresh(_ event: ChangeEvent) throws -> ByteBuffer {
        let payload = Payload(
            index: event.index, kind: event.kind.rawValue, serviceName: event.serviceName, instanceID: event.instanceID,
            instance: event.instance)
        let json = String(decoding: try JSONEncoder().encode(payload), as: UTF8.self)
        return ByteBuffer(string: "id: \(event.index)\nevent: \(event.kind.rawValue)\ndata: \(json)\n\n")
    }

    static func resync(reason: String) -> ByteBuffer {
        ByteBuffer(string: "event: resync\ndata: {\"reason\":\"\(reason)\"}\n\n")
    }
}

/// A bounded map from event to its encoded bytes. Keyed by index and instance, which identify an
/// event on this node; a catch-up event can share an index with a live one only if it is the same.
final class EncodedEvents: @unchecked Sendable {
    private struct Key: Hashable {
        var index: UInt64
        var instanceID: String
        var kind: String
    }

    private let lock = NSLock()
    private var entries: [Key: ByteBuffer] = [:]
    private var order: [Key] = []
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    private func key(_ event: ChangeEvent) -> Key {
        Key(index: event.index, instanceID: event.instanceID, kind: event.kind.rawValue)
    }

    func get(_ event: ChangeEvent) -> ByteBuffer? {
        let key = key(event)
        return lock.withLock { entries[key] }
    }

    func put(_ event: ChangeEvent, _ bytes: ByteBuffer) {
        let key = key(event)
        lock.withLock {
            guard entries.updateValue(bytes, forKey: key) == nil else { return }
            order.append(key)
            if order.count > capacity { entries[order.removeFirst()] = nil }
        }
    }
}
