import NIOCore

/// One message unit of the peer protocol, as it travels between nodes.
///
/// TCP is a byte stream, so every message is wrapped in a frame that says how long it is. The
/// layout is:
///
/// ```
/// +----------------+--------+------------------------------+
/// | length: UInt32 | header | body                         |
/// | big-endian     | 1 byte | (length - 1) bytes           |
/// +----------------+--------+------------------------------+
/// header: high nibble = protocol version (1), low nibble = flags (bit 0 = LZ4)
/// body, uncompressed: the payload
/// body, LZ4:          uncompressed length: UInt32 big-endian, then one LZ4 block
/// ```
///
/// `length` counts everything after itself, so a reader knows the size of the whole frame from
/// its first 4 bytes and can refuse an oversized frame before buffering any of it.
public struct Frame: Hashable, Sendable {
    /// The protocol version this node writes into, and accepts from, the header's high nibble.
    public static let currentVersion: UInt8 = 1

    /// Bytes of the big-endian length prefix.
    public static let lengthPrefixBytes = 4
    /// Bytes of the header (version and flags).
    public static let headerBytes = 1
    /// Bytes of the uncompressed-length field that precedes an LZ4 block.
    public static let uncompressedLengthBytes = 4

    /// The message bytes carried by the frame, after decompression.
    public var payload: ByteBuffer

    public init(payload: ByteBuffer) {
        self.payload = payload
    }
}

// MARK: - Header

/// The flag bits of a frame header's low nibble.
public struct FrameFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The body is an uncompressed length followed by an LZ4 block.
    public static let lz4Compressed = FrameFlags(rawValue: 1 << 0)

    /// Every flag this version understands. A frame with any other bit set is refused, so that a
    /// future flag can never be silently misread by an old node.
    public static let known: FrameFlags = [.lz4Compressed]
}

/// The header byte of a frame: a protocol version and flags, validated on the way in.
public struct FrameHeader: Hashable, Sendable {
    public var version: UInt8
    public var flags: FrameFlags

    public init(version: UInt8 = Frame.currentVersion, flags: FrameFlags) {
        precondition(version <= 0x0F && flags.rawValue <= 0x0F, "version and flags are 4 bits each")
        self.version = version
        self.flags = flags
    }

    /// Parses a header byte from a peer.
    /// - Throws: ``WireError`` `.unsupportedVersion` or `.unknownFlags`.
    public init(validating byte: UInt8) throws {
        let version = byte >> 4
        let flags = byte & 0x0F
        guard version == Frame.currentVersion else {
            throw WireError.unsupportedVersion(version, supported: Frame.currentVersion)
        }
        guard flags & ~FrameFlags.known.rawValue == 0 else {
            throw WireError.unknownFlags(flags, known: FrameFlags.known.rawValue)
        }
        self.version = version
        self.flags = FrameFlags(rawValue: flags)
    }

    /// The byte as written on the wire.
    public var byte: UInt8 { (self.version << 4) | self.flags.rawValue }
}

// MARK: - Limits

/// The bounds that keep one misbehaving or malicious peer from exhausting this node's memory.
///
/// Both the frame size and the decompressed size are limited, because LZ4 lets a small frame
/// declare a large payload (a "decompression bomb"). Both limits are checked before anything is
/// allocated for the frame.
public struct FrameLimits: Hashable, Sendable {
    /// The largest value of the length prefix (header plus body) accepted or sent.
    public var maxFrameBytes: Int
    /// The largest uncompressed payload a compressed frame may declare.
    public var maxDecompressedBytes: Int
    /// Payloads smaller than this are sent uncompressed: LZ4 gains nothing on tiny messages.
    public var compressionThreshold: Int

    /// 16 MiB frames, 64 MiB decompressed, compression from 512 bytes.
    public static let `default` = FrameLimits()

    /// - Precondition: `maxFrameBytes` is in `1...UInt32.max`, `maxDecompressedBytes` in
    ///   `0...LZ4.maxInputSize`, and `compressionThreshold >= 0`. These come from the node's own
    ///   configuration, which must be validated before it gets here.
    public init(
        maxFrameBytes: Int = 16 * 1024 * 1024,
        maxDecompressedBytes: Int = 64 * 1024 * 1024,
        compressionThreshold: Int = 512
    ) {
        precondition(
            maxFrameBytes >= 1 && maxFrameBytes <= Int(UInt32.max),
            "maxFrameBytes \(maxFrameBytes) out of range"
        )
        precondition(
            maxDecompressedBytes >= 0 && maxDecompressedBytes <= LZ4.maxInputSize,
            "maxDecompressedBytes \(maxDecompressedBytes) out of range 0...\(LZ4.maxInputSize)"
        )
        precondition(compressionThreshold >= 0, "compressionThreshold must not be negative")
        self.maxFrameBytes = maxFrameBytes
        self.maxDecompressedBytes = maxDecompressedBytes
        self.compressionThreshold = compressionThreshold
    }
}

// MARK: - Statistics

/// What one frame cost on the wire, reported by the codec so the shell can publish metrics such
/// as bytes sent and the compression ratio.
public struct FrameStats: Hashable, Sendable {
    /// Bytes of the payload, before compression or after decompression.
    public var payloadBytes: Int
    /// Bytes of the whole frame on the wire, length prefix included.
    public var wireBytes: Int
    /// Whether the frame travelled LZ4-compressed.
    public var compressed: Bool

    public init(payloadBytes: Int, wireBytes: Int, compressed: Bool) {
        self.payloadBytes = payloadBytes
        self.wireBytes = wireBytes
        self.compressed = compressed
    }
}
