import NIOCore
import RosterWire

/// Hands transport events (which arrive on event-loop threads) to the cluster actor in order,
/// through one bounded stream. If the actor falls far behind, the oldest events are dropped:
/// membership retries and anti-entropy repair anything lost, while memory stays bounded.
final class ClusterInbox: PeerTransportDelegate {
    enum Event: Sendable {
        case connected(Handshake, address: String)
        case disconnected(address: String, reason: String)
        case received(ByteBuffer, from: Handshake)
        case refused(address: String, reason: String)
    }

    let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation

    init(capacity: Int = 8192) {
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(capacity))
    }

    func finish() { continuation.finish() }

    func peerConnected(_ remote: Handshake, address: String) { continuation.yield(.connected(remote, address: address)) }
    func peerDisconnected(address: String, reason: String) { continuation.yield(.disconnected(address: address, reason: reason)) }
    func received(_ payload: ByteBuffer, from remote: Handshake) { continuation.yield(.received(payload, from: remote)) }
    func refused(address: String, reason: String) { continuation.yield(.refused(address: address, reason: reason)) }
}
