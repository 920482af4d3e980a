import NIOCore

// MARK: - Decoder

/// Turns the byte stream from a peer into frame payloads, decompressed, one `ByteBuffer` each.
///
/// Install it as `ByteToMessageHandler(FrameDecoder(limits: ...))`. Every frame is checked
/// against ``FrameLimits`` before its body is buffered (see ``Frame/decode(from:limits:allocator:)``).
/// A bad frame throws a ``WireError``; `ByteToMessageHandler` passes it to `errorCaught` and
/// stops decoding, and the shell closes that connection. One bad peer never affects another.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    /// The limits every inbound frame is checked against.
    public let limits: FrameLimits
    private let onFrame: (@Sendable (FrameStats) -> Void)?

    /// - Parameter onFrame: called once per decoded frame, e.g. to count bytes received and the
    ///   compression ratio. It runs on the channel's event loop, so it must be cheap.
    public init(limits: FrameLimits = .default, onFrame: (@Sendable (FrameStats) -> Void)? = nil) {
        self.limits = limits
        self.onFrame = onFrame
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard
            let (frame, stats) = try Frame.decode(
                from: &buffer,
                limits: self.limits,
                allocator: context.channel.allocator
            )
        else { return .needMoreData }
        self.onFrame?(stats)
        context.fireChannelRead(Self.wrapInboundOut(frame.payload))
        return .continue
    }

    /// Delivers every complete frame still buffered when the stream ends. A partial frame left
    /// at end of stream means the peer died or hung up mid-message; that is reported as a
    /// `.truncated` ``WireError`` rather than silently dropped, so the shell can log it.
    public mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        while try self.decode(context: context, buffer: &buffer) == .continue {}
        if seenEOF, buffer.readableBytes > 0 {
            let expected = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self).map {
                "of \(Int($0) + Frame.lengthPrefixBytes) bytes "
            }
            throw WireError.truncated(
                "connection ended \(buffer.readableBytes) bytes into a frame \(expected ?? "")"
                    + "before the frame was complete"
            )
        }
        return .needMoreData
    }
}

// MARK: - Encoder

/// Wraps each outbound payload in a frame, compressing with LZ4 when it pays.
///
/// Install it as `MessageToByteHandler(FrameEncoder(limits: ...))` and write `ByteBuffer`
/// payloads. Use the same ``FrameLimits`` as the peers' decoders, so that nothing is sent that a
/// peer would refuse: a payload too large for a frame fails its write promise here instead.
public struct FrameEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = ByteBuffer

    /// The limits every outbound frame is kept within.
    public let limits: FrameLimits
    private let onFrame: (@Sendable (FrameStats) -> Void)?

    /// - Parameter onFrame: called once per encoded frame with its payload and wire sizes, e.g.
    ///   to publish bytes sent and the compression ratio. It runs on the channel's event loop.
    public init(limits: FrameLimits = .default, onFrame: (@Sendable (FrameStats) -> Void)? = nil) {
        self.limits = limits
        self.onFrame = onFrame
    }

    public func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        let stats = try Frame(payload: data).encode(limits: self.limits, into: &out)
        self.onFrame?(stats)
    }
}
