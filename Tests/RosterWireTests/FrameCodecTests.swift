import NIOCore
import NIOEmbedded
import NIOTestUtils
import RosterWire
import Testing

// MARK: - Helpers

/// Collects codec statistics. `@unchecked Sendable` is sound here: `EmbeddedChannel` runs every
/// handler on the test's own thread.
final class StatsRecorder: @unchecked Sendable {
    private(set) var frames: [FrameStats] = []
    var callback: @Sendable (FrameStats) -> Void { { self.frames.append($0) } }
}

func encoderChannel(limits: FrameLimits = .default, stats: StatsRecorder? = nil) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(
        MessageToByteHandler(FrameEncoder(limits: limits, onFrame: stats?.callback))
    )
    return channel
}

func decoderChannel(limits: FrameLimits = .default, stats: StatsRecorder? = nil) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(
        ByteToMessageHandler(FrameDecoder(limits: limits, onFrame: stats?.callback))
    )
    return channel
}

/// Sends `payload` through a real encoder handler and returns the bytes it put on the wire.
func wireBytes(for payload: [UInt8], limits: FrameLimits = .default, stats: StatsRecorder? = nil) throws -> ByteBuffer {
    let channel = try encoderChannel(limits: limits, stats: stats)
    try channel.writeOutbound(ByteBuffer(bytes: payload))
    let wire = try #require(try channel.readOutbound(as: ByteBuffer.self))
    #expect(try channel.finish().isClean)
    return wire
}

// MARK: - Tests

@Suite("Frame codec")
struct FrameCodecTests {
    @Test func smallPayloadTravelsUncompressedWithTheDocumentedLayout() throws {
        let wire = try wireBytes(for: Array("hello".utf8))
        #expect(Array(wire.readableBytesView) == [0, 0, 0, 6, 0x10] + Array("hello".utf8))

        let decoder = try decoderChannel()
        try decoder.writeInbound(wire)
        #expect(try decoder.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "hello"))
        #expect(try decoder.readInbound(as: ByteBuffer.self) == nil)
        #expect(try decoder.finish().isClean)
    }

    @Test func largeRepetitivePayloadTravelsCompressedAndRoundTrips() throws {
        let payload = jsonLikePayload(instances: 2_000)
        let sent = StatsRecorder()
        let received = StatsRecorder()
        let wire = try wireBytes(for: payload, stats: sent)
        #expect(wire.getInteger(at: 4, as: UInt8.self) == 0x11)
        #expect(wire.getInteger(at: 5, as: UInt32.self) == UInt32(payload.count))
        #expect(wire.readableBytes * 3 < payload.count)

        let decoder = try decoderChannel(stats: received)
        try decoder.writeInbound(wire)
        #expect(try decoder.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: payload))
        #expect(
            sent.frames == [FrameStats(payloadBytes: payload.count, wireBytes: wire.readableBytes, compressed: true)]
        )
        #expect(received.frames == sent.frames)
        #expect(try decoder.finish().isClean)
    }

    @Test func compressionStartsAtTheThreshold() throws {
        let limits = FrameLimits(compressionThreshold: 512)
        let below = try wireBytes(for: [UInt8](repeating: 65, count: 511), limits: limits)
        let at = try wireBytes(for: [UInt8](repeating: 65, count: 512), limits: limits)
        #expect(below.getInteger(at: 4, as: UInt8.self) == 0x10)
        #expect(at.getInteger(at: 4, as: UInt8.self) == 0x11)
    }

    @Test func incompressiblePayloadIsSentRaw() throws {
        var rng = SplitMix64(seed: 7)
        let payload = randomBytes(count: 8_192, using: &rng)
        let wire = try wireBytes(for: payload)
        #expect(wire.getInteger(at: 4, as: UInt8.self) == 0x10)
        #expect(wire.readableBytes == 4 + 1 + payload.count)
    }

    @Test func payloadTooLargeForAFrameFailsTheWrite() throws {
        var rng = SplitMix64(seed: 8)
        let limits = FrameLimits(maxFrameBytes: 1_000)
        let channel = try encoderChannel(limits: limits)
        let error = #expect(throws: WireError.self) {
            try channel.writeOutbound(ByteBuffer(bytes: randomBytes(count: 2_000, using: &rng)))
        }
        #expect(error?.code == .frameTooLarge)
        _ = try? channel.finish()

        // The same size fits once compressed, so it is sent.
        let fits = try wireBytes(for: [UInt8](repeating: 0, count: 2_000), limits: limits)
        #expect(fits.readableBytes <= 4 + 1_000)
    }

    @Test func severalFramesInOneReadAllDecodeInOrder() throws {
        let payloads: [[UInt8]] = [[], Array("a".utf8), jsonLikePayload(instances: 30), Array("last".utf8)]
        var wire = ByteBuffer()
        for payload in payloads { wire.writeImmutableBuffer(try encodeFrame(payload)) }

        let decoder = try decoderChannel()
        try decoder.writeInbound(wire)
        for payload in payloads {
            #expect(try decoder.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: payload))
        }
        #expect(try decoder.readInbound(as: ByteBuffer.self) == nil)
        #expect(try decoder.finish().isClean)
    }

    @Test func partialFrameYieldsNothingUntilItsLastByte() throws {
        for payload in [Array("byte by byte".utf8), jsonLikePayload(instances: 40)] {
            let wire = try encodeFrame(payload)
            let decoder = try decoderChannel()
            let bytes = Array(wire.readableBytesView)
            for byte in bytes.dropLast() {
                try decoder.writeInbound(ByteBuffer(bytes: [byte]))
                #expect(try decoder.readInbound(as: ByteBuffer.self) == nil)
            }
            try decoder.writeInbound(ByteBuffer(bytes: [bytes[bytes.count - 1]]))
            #expect(try decoder.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: payload))
            #expect(try decoder.finish().isClean)
        }
    }

    @Test func partialFrameAtEndOfStreamIsReportedAsTruncated() throws {
        let wire = try encodeFrame(Array("cut short".utf8))
        let decoder = try decoderChannel()
        try decoder.writeInbound(wire.getSlice(at: 0, length: 7) ?? ByteBuffer())
        let error = #expect(throws: WireError.self) { try decoder.finish() }
        #expect(error?.code == .truncated)
        #expect(error?.message == "connection ended 7 bytes into a frame of 14 bytes before the frame was complete")
    }

    @Test func decoderPassesTheNIOVerifier() throws {
        let payloads: [[UInt8]] = [
            [],
            Array("x".utf8),
            Array("a small uncompressed payload".utf8),
            jsonLikePayload(instances: 25),
            [UInt8](repeating: 0xAB, count: 3_000),
        ]
        let pairs = try payloads.map { (try encodeFrame($0), [ByteBuffer(bytes: $0)]) }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { FrameDecoder() }
    }
}
