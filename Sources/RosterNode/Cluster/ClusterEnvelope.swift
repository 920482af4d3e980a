import NIOCore
import RosterCore

/// One peer payload: a channel byte, then the channel's message. Membership and replication
/// share one connection per peer, so failure detection sees the same path the data takes.
enum ClusterEnvelope: Sendable {
    case membership(MembershipMessage)
    case replication(ReplicationMessage)

    private enum Channel: UInt8 {
        case membership = 1
        case replication = 2
    }

    func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var w = ByteWriter(capacity: 256)
        switch self {
        case .membership(let message):
            w.write(Channel.membership.rawValue)
            message.encode(into: &w)
        case .replication(let message):
            w.write(Channel.replication.rawValue)
            message.encode(into: &w)
        }
        var buffer = allocator.buffer(capacity: w.bytes.count)
        buffer.writeBytes(w.bytes)
        return buffer
    }

    static func decode(_ buffer: ByteBuffer) throws(DecodingFailure) -> ClusterEnvelope {
        var r = ByteReader(Array(buffer.readableBytesView))
        let raw = try r.readByte()
        let envelope: ClusterEnvelope
        switch Channel(rawValue: raw) {
        case .membership: envelope = .membership(try MembershipMessage.decode(from: &r))
        case .replication: envelope = .replication(try ReplicationMessage.decode(from: &r))
        case nil: throw DecodingFailure("unknown peer channel \(raw)")
        }
        guard r.remaining == 0 else { throw DecodingFailure("\(r.remaining) trailing bytes in a peer message") }
        return envelope
    }
}
