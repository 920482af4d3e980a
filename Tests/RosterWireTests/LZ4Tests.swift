import NIOCore
import RosterWire
import Testing

@Suite("LZ4")
struct LZ4Tests {
    @Test func roundTripsArraysAndBuffers() throws {
        let inputs: [[UInt8]] = [[], [42], Array("hello hello hello hello".utf8), jsonLikePayload(instances: 50)]
        for input in inputs {
            let compressed = LZ4.compress(input)
            #expect(try LZ4.decompress(compressed, originalSize: input.count, maxSize: input.count) == input)
            let fromBuffer = LZ4.compress(ByteBuffer(bytes: input))
            #expect(fromBuffer == compressed)
            #expect(
                try LZ4.decompress(ByteBuffer(bytes: compressed), originalSize: input.count, maxSize: 1 << 20) == input
            )
        }
    }

    @Test func compressesRepetitiveJSONAtLeastThreeTimes() throws {
        let json = jsonLikePayload(instances: 1_000)
        let compressed = LZ4.compress(json)
        let ratio = Double(json.count) / Double(compressed.count)
        print("LZ4 ratio on \(json.count) bytes of registry JSON: \(ratio)x (\(compressed.count) bytes)")
        #expect(ratio >= 3)
    }

    @Test func refusesDeclaredSizeOverTheLimitBeforeAllocating() {
        let compressed = LZ4.compress([UInt8](repeating: 7, count: 1_000))
        // Int.max could never be allocated: this only passes if the check comes first.
        let error = #expect(throws: WireError.self) {
            try LZ4.decompress(compressed, originalSize: Int.max, maxSize: 1 << 20)
        }
        #expect(error?.code == .decompressedTooLarge)
        #expect(error?.message.contains("\(Int.max)") == true)
    }

    @Test func refusesSizeMismatchInBothDirections() {
        let input = [UInt8](repeating: 1, count: 4_096)
        let compressed = LZ4.compress(input)
        for declared in [input.count - 1, input.count + 1, 0] {
            let error = #expect(throws: WireError.self) {
                try LZ4.decompress(compressed, originalSize: declared, maxSize: 1 << 20)
            }
            #expect(error?.code == .decompressionFailed)
        }
    }

    @Test func refusesEmptyCorruptAndTruncatedBlocks() {
        let input = jsonLikePayload(instances: 20)
        let compressed = LZ4.compress(input)
        let cases: [[UInt8]] = [
            [],
            Array(compressed.dropLast(compressed.count / 2)),
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        ]
        for block in cases {
            let error = #expect(throws: WireError.self) {
                try LZ4.decompress(block, originalSize: input.count, maxSize: 1 << 20)
            }
            #expect(error?.code == .decompressionFailed)
        }
        #expect(throws: WireError.self) { try LZ4.decompress(compressed, originalSize: -1, maxSize: 10) }
    }

    @Test func expansionRatioBoundHoldsForTheMostCompressibleInput() throws {
        // All zeros is LZ4's best case; the decoder relies on no block expanding further than this.
        for count in [1, 100, 65_536, 4 << 20] {
            let compressed = LZ4.compress([UInt8](repeating: 0, count: count))
            #expect(count <= compressed.count * LZ4.maxExpansionRatio, "count \(count) -> \(compressed.count)")
        }
    }
}
