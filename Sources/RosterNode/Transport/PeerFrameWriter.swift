import NIOCore
import RosterWire

/// Frames each outbound payload with ``FrameEncoder``.
///
/// Not `MessageToByteHandler`, because that handler turns one failed encode into a permanent
/// error state and an `errorCaught`, which would close the whole connection. A payload too large
/// for any frame is this node's mistake, not the peer's: that one write fails, is reported as
/// dropped, and the connection carries on.
final class PeerFrameWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let encoder: FrameEncoder
    private let onUnsendable: (_ payloadBytes: Int, _ error: any Error) -> Void

    init(encoder: FrameEncoder, onUnsendable: @escaping (_ payloadBytes: Int, _ error: any Error) -> Void) {
        self.encoder = encoder
        self.onUnsendable = onUnsendable
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let payload = Self.unwrapOutboundIn(data)
        // Header, length and LZ4 size field, plus LZ4's worst case for incompressible input.
        var frame = context.channel.allocator.buffer(capacity: payload.readableBytes + payload.readableBytes / 255 + 32)
        do {
            try self.encoder.encode(data: payload, out: &frame)
        } catch {
            self.onUnsendable(payload.readableBytes, error)
            promise?.fail(error)
            return
        }
        context.write(Self.wrapOutboundOut(frame), promise: promise)
    }
}
