import NIOCore

/// The first message on every peer connection, sent by both sides before anything else.
///
/// It lets each node refuse a peer before exchanging any state: one from another cluster (a
/// misconfigured seed list must not merge two clusters), one speaking an unsupported protocol
/// version, or itself. The generation tells a restarted node apart from the old process that
/// had the same name, so that peers do not confuse the two.
///
/// Wire layout (big-endian), fixed across protocol versions so that any version can read it:
///
/// ```
/// magic "RSTR" (4) | protocolVersion (1) | generation (8) |
/// clusterID (1-byte length + UTF-8) | nodeName (same) | advertise (same)
/// ```
///
/// Newer versions may append fields; ``decode(from:)`` leaves any bytes after the known fields
/// in the buffer for the caller.
public struct Handshake: Hashable, Sendable {
    /// The cluster this node belongs to. Peers with another cluster id are refused.
    public var clusterID: String
    /// This node's unique name within the cluster.
    public var nodeName: String
    /// Changes on every restart of the node (e.g. a start timestamp), so peers can tell a
    /// restarted node from the old one.
    public var generation: UInt64
    /// The peer protocol version the sender speaks.
    public var protocolVersion: UInt8
    /// The address (host:port) other peers should use to reach the sender.
    public var advertise: String

    /// The protocol versions this build accepts from peers.
    public static let supportedProtocolVersions: ClosedRange<UInt8> = 1...1

    /// The longest string field, in UTF-8 bytes: what a 1-byte length prefix can carry.
    public static let maxStringBytes = 255

    /// "RSTR": lets a node tell a stray client (say, HTTP on the gossip port) from a broken peer.
    public static let magic: UInt32 = 0x5253_5452

    public init(
        clusterID: String,
        nodeName: String,
        generation: UInt64,
        protocolVersion: UInt8 = Frame.currentVersion,
        advertise: String
    ) {
        self.clusterID = clusterID
        self.nodeName = nodeName
        self.generation = generation
        self.protocolVersion = protocolVersion
        self.advertise = advertise
    }
}

// MARK: - Encoding

extension Handshake {
    /// Appends the handshake to `buffer`.
    /// - Throws: ``WireError`` `.fieldTooLong` if a string exceeds ``maxStringBytes`` bytes of
    ///   UTF-8; `buffer` is then left unchanged.
    public func encode(into buffer: inout ByteBuffer) throws {
        let fields = [("clusterID", self.clusterID), ("nodeName", self.nodeName), ("advertise", self.advertise)]
        for (name, value) in fields where value.utf8.count > Self.maxStringBytes {
            throw WireError.fieldTooLong("handshake \(name)", bytes: value.utf8.count, limit: Self.maxStringBytes)
        }
        buffer.writeInteger(Self.magic)
        buffer.writeInteger(self.protocolVersion)
        buffer.writeInteger(self.generation)
        for (_, value) in fields {
            buffer.writeInteger(UInt8(value.utf8.count))
            buffer.writeString(value)
        }
    }

    /// The encoded handshake in a new buffer.
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) throws -> ByteBuffer {
        var buffer = allocator.buffer(
            capacity: 16 + self.clusterID.utf8.count + self.nodeName.utf8.count + self.advertise.utf8.count
        )
        try self.encode(into: &buffer)
        return buffer
    }
}

// MARK: - Decoding

extension Handshake {
    /// Reads a handshake from the front of `buffer`, consuming exactly its bytes.
    ///
    /// - Throws: ``WireError``: `.notARosterPeer` for a wrong magic, `.truncated` if the bytes end
    ///   early, `.invalidUTF8` for a malformed string. On a throw, `buffer` is left unchanged.
    public static func decode(from buffer: inout ByteBuffer) throws -> Handshake {
        var reader = buffer
        guard let magic = reader.readInteger(as: UInt32.self) else {
            throw WireError.truncated("handshake has \(buffer.readableBytes) bytes; the magic alone needs 4")
        }
        guard magic == Self.magic else {
            throw WireError.notARosterPeer(magic: magic, expected: Self.magic)
        }
        guard let protocolVersion = reader.readInteger(as: UInt8.self),
            let generation = reader.readInteger(as: UInt64.self)
        else {
            throw WireError.truncated("handshake ends inside its protocol version or generation")
        }
        let clusterID = try Self.readString(from: &reader, field: "clusterID")
        let nodeName = try Self.readString(from: &reader, field: "nodeName")
        let advertise = try Self.readString(from: &reader, field: "advertise")
        buffer = reader
        return Handshake(
            clusterID: clusterID,
            nodeName: nodeName,
            generation: generation,
            protocolVersion: protocolVersion,
            advertise: advertise
        )
    }

    private static func readString(from reader: inout ByteBuffer, field: String) throws -> String {
        guard let length = reader.readInteger(as: UInt8.self) else {
            throw WireError.truncated("handshake ends before the length of its \(field)")
        }
        guard let bytes = reader.readBytes(length: Int(length)) else {
            throw WireError.truncated(
                "handshake \(field) declares \(length) bytes but only \(reader.readableBytes) remain"
            )
        }
        // `String(decoding:)` repairs invalid UTF-8 with U+FFFD; if the bytes changed, they were invalid.
        let string = String(decoding: bytes, as: UTF8.self)
        guard string.utf8.elementsEqual(bytes) else {
            throw WireError.invalidUTF8("handshake \(field)")
        }
        return string
    }
}
