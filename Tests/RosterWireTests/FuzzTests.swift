import NIOCore
import NIOEmbedded
import RosterWire
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Helpers

/// A fresh seed each run, printed so a failure can be replayed: `ROSTER_FUZZ_SEED=<seed> swift test`.
func fuzzSeed(_ name: String) -> UInt64 {
    let seed = environmentSeed() ?? UInt64.random(in: 0...UInt64.max)
    print("\(name): seed \(seed) (replay with ROSTER_FUZZ_SEED=\(seed))")
    return seed
}

private func environmentSeed() -> UInt64? {
    guard let text = ProcessInfoLite.environment("ROSTER_FUZZ_SEED") else { return nil }
    return UInt64(text)
}

/// Reads one environment variable without Foundation.
enum ProcessInfoLite {
    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
}

/// Decodes frames from `bytes` until it runs out or throws. Returns whether a `WireError` was thrown.
/// Any other error, or a crash, fails the test.
func decodeAll(_ bytes: [UInt8], limits: FrameLimits) throws -> (frames: Int, threw: Bool) {
    var buffer = ByteBuffer(bytes: bytes)
    var frames = 0
    do {
        while let (frame, stats) = try Frame.decode(from: &buffer, limits: limits, allocator: ByteBufferAllocator()) {
            #expect(frame.payload.readableBytes == stats.payloadBytes)
            #expect(frame.payload.readableBytes <= limits.maxDecompressedBytes)
            frames += 1
        }
        return (frames, false)
    } catch is WireError {
        return (frames, true)
    }
}

/// Random bytes that often start like a frame, so the fuzzer gets past the first checks.
func plausibleGarbage(using rng: inout SplitMix64) -> [UInt8] {
    let body = randomBytes(count: Int.random(in: 0...48, using: &rng), using: &rng)
    switch Int.random(in: 0..<4, using: &rng) {
    case 0:
        return body
    case 1:
        let header: UInt8 = [0x10, 0x11, 0x12, 0x21].randomElement(using: &rng) ?? 0x10
        return [0, 0, 0, UInt8(truncatingIfNeeded: body.count + 1), header] + body
    default:
        let length = UInt8.random(in: 0...60, using: &rng)
        return [0, 0, 0, length, 0x11] + body
    }
}

// MARK: - Tests

@Suite("Fuzz")
struct FuzzTests {
    @Test func randomBytesEitherDecodeOrThrowNeverCrash() throws {
        var rng = SplitMix64(seed: fuzzSeed("randomBytes"))
        let limits = FrameLimits(maxFrameBytes: 4_096, maxDecompressedBytes: 65_536)
        var decoded = 0
        var refused = 0
        for _ in 0..<4_000 {
            let (frames, threw) = try decodeAll(plausibleGarbage(using: &rng), limits: limits)
            decoded += frames
            refused += threw ? 1 : 0
        }
        print("randomBytes: \(decoded) frames decoded, \(refused) inputs refused")
        #expect(refused > 0)
    }

    @Test func mutatedValidFramesEitherDecodeOrThrowNeverCrash() throws {
        var rng = SplitMix64(seed: fuzzSeed("mutatedFrames"))
        let limits = FrameLimits.default
        let originals = try [
            encodeFrame(jsonLikePayload(instances: 8)),
            encodeFrame(Array("short and raw".utf8)),
            encodeFrame([UInt8](repeating: 9, count: 1_000)),
        ].map { Array($0.readableBytesView) }
        for _ in 0..<3_000 {
            var bytes = originals.randomElement(using: &rng) ?? []
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let index = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[index] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
                case 1: bytes[index] = UInt8.random(in: 0...255, using: &rng)
                default: bytes.removeLast(Int.random(in: 0...(bytes.count - index - 1), using: &rng))
                }
            }
            _ = try decodeAll(bytes, limits: limits)
        }
    }

    @Test func randomChunksThroughTheChannelNeverCrashIt() throws {
        var rng = SplitMix64(seed: fuzzSeed("channelChunks"))
        let limits = FrameLimits(maxFrameBytes: 4_096, maxDecompressedBytes: 65_536)
        for _ in 0..<300 {
            let decoder = try decoderChannel(limits: limits)
            let bytes = (0..<3).flatMap { _ in plausibleGarbage(using: &rng) }
            var offset = 0
            feeding: while offset < bytes.count {
                let size = Int.random(in: 1...16, using: &rng)
                let chunk = Array(bytes[offset..<min(offset + size, bytes.count)])
                offset += chunk.count
                do {
                    try decoder.writeInbound(ByteBuffer(bytes: chunk))
                } catch is WireError {
                    break feeding
                }
                while try decoder.readInbound(as: ByteBuffer.self) != nil {}
            }
            _ = try? decoder.finish()
        }
    }

    @Test func randomHandshakeBytesEitherDecodeOrThrowNeverCrash() throws {
        var rng = SplitMix64(seed: fuzzSeed("handshakes"))
        let valid = try Array(
            Handshake(clusterID: "roster", nodeName: "n1", generation: 42, advertise: "10.0.0.1:7946")
                .encoded().readableBytesView
        )
        for _ in 0..<3_000 {
            var bytes = valid
            let index = Int.random(in: 0..<bytes.count, using: &rng)
            if Bool.random(using: &rng) {
                bytes[index] = UInt8.random(in: 0...255, using: &rng)
            } else {
                bytes.removeLast(bytes.count - index)
            }
            var buffer = ByteBuffer(bytes: bytes)
            do {
                _ = try Handshake.decode(from: &buffer)
            } catch is WireError {
                #expect(buffer.readableBytes == bytes.count)
            }
        }
    }
}
