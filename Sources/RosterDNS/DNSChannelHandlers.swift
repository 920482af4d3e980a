import Foundation
import Logging
import NIOCore

// MARK: - Answering

/// The part both transports share: a bound on concurrent queries, and the resolver call.
///
/// Each query is answered in its own task, so a slow data source or a failing request never
/// holds up the others; the bound keeps a flood from turning into unbounded tasks.
final class DNSResponder: Sendable {
    let resolver: DNSResolver
    let logger: Logger
    let maxInFlight: Int
    private let inFlight = DNSLocked(0)

    init(resolver: DNSResolver, logger: Logger, maxInFlight: Int = 1024) {
        self.resolver = resolver
        self.logger = logger
        self.maxInFlight = maxInFlight
    }

    /// Answers `request` in a new task and hands the reply to `send`; drops the request if too
    /// many are being answered already, as an overloaded DNS server should (the client retries).
    func answer(_ request: [UInt8], over transport: DNSTransport, send: @escaping @Sendable ([UInt8]) -> Void) {
        let admitted = inFlight.withLock { count in
            guard count < maxInFlight else { return false }
            count += 1
            return true
        }
        guard admitted else {
            logger.debug("DNS query dropped: \(maxInFlight) queries already in flight")
            return
        }
        Task {
            defer { inFlight.withLock { $0 -= 1 } }
            var rng = SystemRandomNumberGenerator()
            guard let reply = await resolver.respond(to: request, over: transport, using: &rng) else {
                logger.debug("DNS packet ignored: too short to answer, or itself a response")
                return
            }
            send(reply)
        }
    }
}

/// A value behind an `NSLock`: `Synchronization.Mutex` needs macOS 15, the package supports 14.
final class DNSLocked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

// MARK: - UDP

/// One datagram in, at most one datagram back to its sender.
final class DNSUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let responder: DNSResponder

    init(responder: DNSResponder) { self.responder = responder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let channel = context.channel
        let remote = envelope.remoteAddress
        responder.answer(Array(envelope.data.readableBytesView), over: .udp) { reply in
            let buffer = channel.allocator.buffer(bytes: reply)
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: buffer), promise: nil)
        }
    }

    /// A UDP socket reports errors such as an ICMP "port unreachable" from an earlier reply; they
    /// concern one client, so the socket stays open for everyone else.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        responder.logger.debug("DNS UDP error: \(error)")
    }
}

// MARK: - TCP

/// Splits a TCP stream into DNS messages, each behind a 2-byte big-endian length
/// (RFC 1035 §4.2.2).
struct DNSTCPFrameDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            buffer.readableBytes >= 2 + Int(length)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: 2)
        return buffer.readSlice(length: Int(length))
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        try decode(buffer: &buffer)
    }
}

/// Answers each framed query on a connection, pipelined: replies may come back out of order,
/// which RFC 7766 §6.2.1.1 allows since the id matches them up. Closes the connection when it
/// has been idle, so that abandoned connections do not pile up.
final class DNSTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let responder: DNSResponder

    init(responder: DNSResponder) { self.responder = responder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let channel = context.channel
        responder.answer(Array(frame.readableBytesView), over: .tcp) { reply in
            var buffer = channel.allocator.buffer(capacity: reply.count + 2)
            buffer.writeInteger(UInt16(clamping: reply.count))
            buffer.writeBytes(reply)
            channel.writeAndFlush(buffer, promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// An error on one connection closes that connection only.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        responder.logger.debug("DNS TCP connection closed on an error: \(error)")
        context.close(promise: nil)
    }
}
