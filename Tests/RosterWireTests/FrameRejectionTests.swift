import NIOCore
import NIOEmbedded
import RosterWire
import Testing

// MARK: - Helpers

/// Feeds `bytes` to a fresh decoder channel and returns the `WireError` it raised, if any.
@discardableResult
func expectRejected(
    _ bytes: ByteBuffer,
    limits: FrameLimits = .default,
    code: WireError.Code,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> WireError? {
    let decoder = try decoderChannel(limits: limits)
    let error = #expect(throws: WireError.self, sourceLocation: sourceLocation) {
        try decoder.writeInbound(bytes)
    }
    #expect(error?.code == code, "\(String(describing: error))", sourceLocation: sourceLocation)
    #expect(try decoder.readInbound(as: ByteBuffer.self) == nil, sourceLocation: sourceLocation)
    _ = try? decoder.finish()
    return error
}

/// Only the first `count` bytes of a frame: shows a check does not wait for the body.
func prefix(_ count: Int, of buffer: ByteBuffer) -> ByteBuffer {
    buffer.getSlice(at: buffer.readerIndex, length: count) ?? ByteBuffer()
}

// MARK: - Tests

@Suite("Frame rejection")
struct FrameRejectionTests {
    @Test func unsupportedVersionIsRefused() throws {
        for header: UInt8 in [0x00, 0x20, 0xF0, 0x21] {
            let error = try expectRejected(rawFrame(header: header, body: [1, 2, 3]), code: .unsupportedVersion)
            #expect(error?.message.contains("version \(header >> 4)") == true)
        }
    }

    @Test func unknownFlagBitsAreRefused() throws {
        for header: UInt8 in [0x12, 0x14, 0x18, 0x1F] {
            try expectRejected(rawFrame(header: header, body: [1, 2, 3]), code: .unknownFlags)
        }
    }

    @Test func zeroLengthFrameIsRefused() throws {
        try expectRejected(ByteBuffer(bytes: [0, 0, 0, 0]), code: .emptyFrame)
    }

    @Test func oversizedDeclaredLengthIsRefusedFromThePrefixAlone() throws {
        let limits = FrameLimits()
        for declared in [UInt32(limits.maxFrameBytes + 1), UInt32.max] {
            var prefixOnly = ByteBuffer()
            prefixOnly.writeInteger(declared)
            let error = try expectRejected(prefixOnly, code: .frameTooLarge)
            #expect(error?.message.contains("\(declared)") == true)
        }
        // Exactly at the limit is fine: the decoder just waits for the body.
        var atLimit = ByteBuffer()
        atLimit.writeInteger(UInt32(limits.maxFrameBytes))
        atLimit.writeInteger(UInt8(0x10))
        let decoder = try decoderChannel()
        try decoder.writeInbound(atLimit)
        #expect(try decoder.readInbound(as: ByteBuffer.self) == nil)
    }

    @Test func compressedFrameTooShortForItsSizeFieldIsRefused() throws {
        try expectRejected(rawFrame(header: 0x11, body: [0, 0, 0, 5]), code: .malformedFrame)
        try expectRejected(rawFrame(header: 0x11, body: [0, 0]), code: .malformedFrame)
    }

    @Test func declaredDecompressedSizeOverTheLimitIsRefusedBeforeTheBody() throws {
        let limits = FrameLimits()
        let frame = rawFrame(
            length: 1_000,
            header: 0x11,
            body: [0x04, 0x00, 0x00, 0x01]  // 64 MiB + 1
        )
        let error = try expectRejected(frame, code: .decompressedTooLarge)
        #expect(error?.message.contains("\(limits.maxDecompressedBytes)") == true)
    }

    @Test func declaredSizeBeyondLZ4sExpansionRatioIsRefusedBeforeTheBody() throws {
        // 10 bytes of LZ4 can never become 1 MB; refuse without allocating the megabyte.
        let frame = rawFrame(length: 1 + 4 + 10, header: 0x11, body: [0x00, 0x10, 0x00, 0x00])
        try expectRejected(frame, code: .decompressionFailed)
    }

    @Test func realHighlyCompressibleBombIsRefused() throws {
        // 100 MB of zeros: a legal LZ4 block that fits a frame easily, but expands past the limit.
        let bomb = LZ4.compress([UInt8](repeating: 0, count: 100_000_000))
        let frame = compressedFrame(uncompressedLength: 100_000_000, block: bomb)
        #expect(frame.readableBytes < FrameLimits.default.maxFrameBytes)
        try expectRejected(frame, code: .decompressedTooLarge)
        try expectRejected(prefix(9, of: frame), code: .decompressedTooLarge)

        // Lying about the size to slip under the limit does not help either.
        try expectRejected(
            compressedFrame(uncompressedLength: UInt32(FrameLimits.default.maxDecompressedBytes), block: bomb),
            code: .decompressionFailed
        )
    }

    @Test func truncatedCompressedBlockIsRefused() throws {
        let payload = jsonLikePayload(instances: 100)
        let block = LZ4.compress(payload)
        for keep in [1, block.count / 3, block.count - 1] {
            let frame = compressedFrame(uncompressedLength: UInt32(payload.count), block: Array(block.prefix(keep)))
            try expectRejected(frame, code: .decompressionFailed)
        }
    }

    @Test func blockThatExpandsToAnotherSizeThanDeclaredIsRefused() throws {
        let payload = jsonLikePayload(instances: 10)
        let block = LZ4.compress(payload)
        for declared in [payload.count - 1, payload.count + 1] {
            try expectRejected(
                compressedFrame(uncompressedLength: UInt32(declared), block: block),
                code: .decompressionFailed
            )
        }
    }

    @Test func badFrameAfterGoodOnesStillDeliversTheGoodOnes() throws {
        var wire = try encodeFrame(Array("first".utf8))
        wire.writeImmutableBuffer(rawFrame(header: 0x30, body: [1]))
        let decoder = try decoderChannel()
        #expect(throws: WireError.self) { try decoder.writeInbound(wire) }
        #expect(try decoder.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "first"))
        _ = try? decoder.finish()
    }

    @Test func wireErrorReachesErrorCaughtSoTheShellCanCloseTheConnection() throws {
        final class CloseOnWireError: ChannelInboundHandler {
            typealias InboundIn = ByteBuffer
            var closedFor: WireError?
            func errorCaught(context: ChannelHandlerContext, error: Error) {
                self.closedFor = error as? WireError
                context.close(promise: nil)
            }
        }
        let closer = CloseOnWireError()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
        try channel.pipeline.syncOperations.addHandler(closer)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(channel.isActive)

        try channel.writeInbound(ByteBuffer(bytes: [0, 0, 0, 0]))
        #expect(closer.closedFor?.code == .emptyFrame)
        #expect(!channel.isActive)
    }
}
