/// Why bytes from (or for) a peer could not be turned into frames, payloads or a handshake.
///
/// Every decoder in this module throws `WireError`. Inside a NIO pipeline the throw reaches
/// `errorCaught`, and the shell closes that one connection: a peer that sends a bad frame loses
/// its connection, and nothing else is affected.
///
/// The type is a struct around a private enum, in the swift-nio style, so that new codes can be
/// added without breaking anyone's exhaustive `switch`. Match on ``code``; show ``message``.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem this is. Compare against the static members, e.g. `.frameTooLarge`.
    public let code: Code

    /// A human-readable sentence naming what was wrong and what would be right.
    public let message: String

    public var description: String { "WireError.\(self.code): \(self.message)" }

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

// MARK: - Codes

extension WireError {
    /// A stable, comparable identifier for a class of wire errors.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case emptyFrame
            case frameTooLarge
            case unsupportedVersion
            case unknownFlags
            case malformedFrame
            case decompressedTooLarge
            case decompressionFailed
            case truncated
            case fieldTooLong
            case invalidUTF8
            case notARosterPeer
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        public var description: String { self.base.rawValue }

        /// A frame whose length prefix is zero: it has no room even for the header byte.
        public static let emptyFrame = Code(.emptyFrame)
        /// A frame longer than `FrameLimits.maxFrameBytes` (inbound or outbound).
        public static let frameTooLarge = Code(.frameTooLarge)
        /// The header's version nibble names a protocol version this node does not speak.
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// The header sets flag bits this node does not know.
        public static let unknownFlags = Code(.unknownFlags)
        /// The frame's parts do not fit together, e.g. a compressed frame too short for its size field.
        public static let malformedFrame = Code(.malformedFrame)
        /// A compressed payload declares more bytes than `FrameLimits.maxDecompressedBytes`.
        public static let decompressedTooLarge = Code(.decompressedTooLarge)
        /// The LZ4 block is corrupt, truncated, or does not expand to its declared size.
        public static let decompressionFailed = Code(.decompressionFailed)
        /// A structure (such as a handshake) ended before all of its fields were read.
        public static let truncated = Code(.truncated)
        /// A string field is longer than its length prefix can carry.
        public static let fieldTooLong = Code(.fieldTooLong)
        /// A string field is not valid UTF-8.
        public static let invalidUTF8 = Code(.invalidUTF8)
        /// The bytes do not start with the Roster handshake magic: the peer speaks something else.
        public static let notARosterPeer = Code(.notARosterPeer)
    }
}

// MARK: - Constructors with messages

extension WireError {
    static func emptyFrame() -> WireError {
        WireError(.emptyFrame, "frame length prefix is 0; a frame needs at least 1 byte for its header")
    }

    static func frameTooLarge(declared: Int, limit: Int) -> WireError {
        WireError(
            .frameTooLarge,
            "frame declares \(declared) bytes, over the limit of \(limit) bytes (FrameLimits.maxFrameBytes)"
        )
    }

    static func outboundFrameTooLarge(payloadBytes: Int, limit: Int) -> WireError {
        WireError(
            .frameTooLarge,
            "payload of \(payloadBytes) bytes does not fit a frame of at most \(limit) bytes "
                + "(FrameLimits.maxFrameBytes), even compressed; the peer would refuse it"
        )
    }

    static func unsupportedVersion(_ version: UInt8, supported: UInt8) -> WireError {
        WireError(
            .unsupportedVersion,
            "frame header has protocol version \(version); this node speaks version \(supported)"
        )
    }

    static func unknownFlags(_ flags: UInt8, known: UInt8) -> WireError {
        WireError(
            .unknownFlags,
            "frame header sets unknown flag bits 0b\(String(flags & ~known, radix: 2)); "
                + "known flags are 0b\(String(known, radix: 2))"
        )
    }

    static func malformedFrame(_ what: String) -> WireError {
        WireError(.malformedFrame, what)
    }

    static func decompressedTooLarge(declared: Int, limit: Int) -> WireError {
        WireError(
            .decompressedTooLarge,
            "compressed payload declares \(declared) uncompressed bytes, over the limit of \(limit) bytes "
                + "(FrameLimits.maxDecompressedBytes)"
        )
    }

    static func decompressionFailed(_ what: String) -> WireError {
        WireError(.decompressionFailed, what)
    }

    static func truncated(_ what: String) -> WireError {
        WireError(.truncated, what)
    }

    static func fieldTooLong(_ field: String, bytes: Int, limit: Int) -> WireError {
        WireError(.fieldTooLong, "\(field) is \(bytes) bytes of UTF-8; at most \(limit) bytes are allowed")
    }

    static func invalidUTF8(_ field: String) -> WireError {
        WireError(.invalidUTF8, "\(field) is not valid UTF-8")
    }

    static func notARosterPeer(magic: UInt32, expected: UInt32) -> WireError {
        WireError(
            .notARosterPeer,
            "handshake starts with 0x\(String(magic, radix: 16)), not the Roster magic "
                + "0x\(String(expected, radix: 16)); the peer is not a Roster node (wrong port?)"
        )
    }
}
