import NIOCore
import RosterWire

// MARK: - Deterministic randomness

/// A small, fast, seedable generator, so that a failing random test can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - Payloads

/// Registry-like JSON: the repetitive shape that state transfer actually carries.
func jsonLikePayload(instances: Int) -> [UInt8] {
    var text = "["
    for index in 0..<instances {
        if index > 0 { text += "," }
        text += """
            {"id":"web-\(index)","service":"web","address":"10.0.\(index / 256).\(index % 256)",\
            "port":8080,"tags":["http","v2","primary"],"meta":{"zone":"eu-west-1a","team":"platform"},\
            "status":"passing","node":"node-\(index % 7)"}
            """
    }
    text += "]"
    return Array(text.utf8)
}

func randomBytes(count: Int, using rng: inout SplitMix64) -> [UInt8] {
    (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
}

// MARK: - Frames by hand

/// Builds frame bytes field by field, so tests can write frames the encoder never would.
func rawFrame(length: UInt32? = nil, header: UInt8, body: [UInt8]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(length ?? UInt32(1 + body.count))
    buffer.writeInteger(header)
    buffer.writeBytes(body)
    return buffer
}

/// A compressed frame around `block`, declaring `uncompressedLength`.
func compressedFrame(uncompressedLength: UInt32, block: [UInt8]) -> ByteBuffer {
    var body: [UInt8] = []
    withUnsafeBytes(of: uncompressedLength.bigEndian) { body.append(contentsOf: $0) }
    body.append(contentsOf: block)
    return rawFrame(header: 0x11, body: body)
}

func encodeFrame(_ payload: [UInt8], limits: FrameLimits = .default) throws -> ByteBuffer {
    var out = ByteBuffer()
    try Frame(payload: ByteBuffer(bytes: payload)).encode(limits: limits, into: &out)
    return out
}
