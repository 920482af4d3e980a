import CLZ4
import NIOCore

/// LZ4 block compression over the system's liblz4.
///
/// State transfer between peers is large and repetitive (service names, tags, addresses), and LZ4
/// shrinks it several times over at memory-copy speed. The block format carries no size of its
/// own, so callers send the uncompressed size next to the block, and ``decompress(_:originalSize:maxSize:)``
/// checks that size against a limit *before* allocating anything: a peer cannot make this node
/// allocate more than the limit by declaring a huge size.
public enum LZ4 {
    /// The largest input liblz4 accepts (`LZ4_MAX_INPUT_SIZE`, a little under 2 GiB).
    public static let maxInputSize = Int(LZ4_MAX_INPUT_SIZE)

    /// No valid LZ4 block expands by more than this factor: a match costs at least one byte per
    /// 255 bytes of output. A declared size above `255 × block size` is a lie, found without
    /// decompressing.
    public static let maxExpansionRatio = 255

    /// The largest compressed size of `count` input bytes: how much room compression needs.
    /// - Precondition: `0 <= count <= maxInputSize`.
    public static func compressBound(_ count: Int) -> Int {
        precondition(count >= 0 && count <= maxInputSize, "LZ4 input of \(count) bytes is outside 0...\(maxInputSize)")
        return Int(LZ4_compressBound(Int32(count)))
    }

    // MARK: - Compression

    /// Compresses `bytes` into one LZ4 block.
    /// - Precondition: `bytes.count <= maxInputSize`.
    public static func compress(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { self.compressToArray($0) }
    }

    /// Compresses the readable bytes of `buffer` into one LZ4 block.
    /// - Precondition: `buffer.readableBytes <= maxInputSize`.
    public static func compress(_ buffer: ByteBuffer) -> [UInt8] {
        buffer.withUnsafeReadableBytes { self.compressToArray($0) }
    }

    /// Appends the LZ4 block of `source` to `out` and returns its size. The frame encoder uses this
    /// to compress straight into the outgoing buffer, without an intermediate array.
    /// - Precondition: `source.count <= maxInputSize`.
    @discardableResult
    public static func compress(_ source: UnsafeRawBufferPointer, appendingTo out: inout ByteBuffer) -> Int {
        let bound = self.compressBound(source.count)
        return out.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { destination in
            self.compressRaw(source, into: destination)
        }
    }

    private static func compressToArray(_ source: UnsafeRawBufferPointer) -> [UInt8] {
        let bound = self.compressBound(source.count)
        return [UInt8](unsafeUninitializedCapacity: bound) { destination, initializedCount in
            initializedCount = self.compressRaw(source, into: UnsafeMutableRawBufferPointer(destination))
        }
    }

    /// Payloads of at least this many bytes use LZ4-HC.
    public static let highCompressionThreshold = 32 * 1024
    /// A low HC level: most of HC's gain for a fraction of its top levels' time.
    static let highCompressionLevel: Int32 = 4

    private static func compressRaw(
        _ source: UnsafeRawBufferPointer,
        into destination: UnsafeMutableRawBufferPointer
    ) -> Int {
        let capacity = Int32(clamping: destination.count)
        let input = source.baseAddress?.assumingMemoryBound(to: CChar.self)
        let output = destination.baseAddress?.assumingMemoryBound(to: CChar.self)
        // Large payloads are state transfer (anti-entropy repairs, a new node's bootstrap), sent
        // rarely and worth more CPU per byte: LZ4-HC at a low level compresses records about a
        // third smaller than the fast mode, at well over 50 MB/s. Small frames stay on the fast
        // path, where latency matters more than a few bytes. Both decode with the same function.
        let written =
            source.count >= self.highCompressionThreshold
            ? LZ4_compress_HC(input, output, Int32(source.count), capacity, self.highCompressionLevel)
            : LZ4_compress_default(input, output, Int32(source.count), capacity)
        // With capacity >= compressBound, liblz4 documents that compression cannot fail.
        precondition(written > 0, "LZ4_compress_default failed for \(source.count) bytes into \(capacity)")
        return Int(written)
    }

    // MARK: - Decompression

    /// Decompresses one LZ4 block that should expand to exactly `originalSize` bytes.
    ///
    /// - Throws: ``WireError`` with code `.decompressedTooLarge` if `originalSize > maxSize`
    ///   (checked before any allocation), or `.decompressionFailed` if the block is corrupt,
    ///   truncated, or expands to a different size.
    public static func decompress(_ compressed: [UInt8], originalSize: Int, maxSize: Int) throws -> [UInt8] {
        try compressed.withUnsafeBytes { try self.decompressToArray($0, originalSize: originalSize, maxSize: maxSize) }
    }

    /// Decompresses the readable bytes of `compressed`; with the same checks as the array version.
    public static func decompress(_ compressed: ByteBuffer, originalSize: Int, maxSize: Int) throws -> [UInt8] {
        try compressed.withUnsafeReadableBytes {
            try self.decompressToArray($0, originalSize: originalSize, maxSize: maxSize)
        }
    }

    /// Decompresses `source` and appends exactly `originalSize` bytes to `out`. The frame decoder
    /// uses this to decompress straight into a channel buffer.
    public static func decompress(
        _ source: UnsafeRawBufferPointer,
        originalSize: Int,
        maxSize: Int,
        appendingTo out: inout ByteBuffer
    ) throws {
        try self.checkSizes(source, originalSize: originalSize, maxSize: maxSize)
        // `max(_, 1)` so that an empty result still gets a real destination pointer.
        out.reserveCapacity(minimumWritableBytes: max(originalSize, 1))
        try out.writeWithUnsafeMutableBytes(minimumWritableBytes: max(originalSize, 1)) { destination in
            try self.decompressRaw(source, into: destination, originalSize: originalSize)
        }
    }

    private static func decompressToArray(
        _ source: UnsafeRawBufferPointer,
        originalSize: Int,
        maxSize: Int
    ) throws -> [UInt8] {
        try self.checkSizes(source, originalSize: originalSize, maxSize: maxSize)
        return try [UInt8](unsafeUninitializedCapacity: max(originalSize, 1)) { destination, initializedCount in
            initializedCount = try self.decompressRaw(
                source,
                into: UnsafeMutableRawBufferPointer(destination),
                originalSize: originalSize
            )
        }
    }

    /// Every check that can be made without touching memory: run before allocating.
    private static func checkSizes(_ source: UnsafeRawBufferPointer, originalSize: Int, maxSize: Int) throws {
        guard originalSize >= 0 else {
            throw WireError.decompressionFailed("declared uncompressed size \(originalSize) is negative")
        }
        guard originalSize <= maxSize else {
            throw WireError.decompressedTooLarge(declared: originalSize, limit: maxSize)
        }
        guard originalSize <= Int(Int32.max), source.count <= Int(Int32.max) else {
            throw WireError.decompressionFailed(
                "LZ4 block of \(source.count) bytes declaring \(originalSize) bytes exceeds liblz4's 2 GiB range"
            )
        }
        guard source.count > 0 else {
            throw WireError.decompressionFailed("LZ4 block is empty; even an empty input compresses to 1 byte")
        }
        guard originalSize <= source.count * self.maxExpansionRatio else {
            throw WireError.decompressionFailed(
                "LZ4 block of \(source.count) bytes cannot expand to the declared \(originalSize) bytes "
                    + "(at most \(self.maxExpansionRatio)× is possible); the size or the block is corrupt"
            )
        }
    }

    /// Runs `LZ4_decompress_safe`, which never writes past `originalSize` bytes and fails on
    /// malformed input instead of reading out of bounds.
    private static func decompressRaw(
        _ source: UnsafeRawBufferPointer,
        into destination: UnsafeMutableRawBufferPointer,
        originalSize: Int
    ) throws -> Int {
        precondition(destination.count >= originalSize)
        let result = LZ4_decompress_safe(
            source.baseAddress?.assumingMemoryBound(to: CChar.self),
            destination.baseAddress?.assumingMemoryBound(to: CChar.self),
            Int32(source.count),
            Int32(originalSize)
        )
        guard result >= 0 else {
            throw WireError.decompressionFailed(
                "LZ4 block of \(source.count) bytes is corrupt, truncated, or expands to more than "
                    + "the declared \(originalSize) bytes (liblz4 error \(result))"
            )
        }
        guard Int(result) == originalSize else {
            throw WireError.decompressionFailed(
                "LZ4 block expands to \(result) bytes, but \(originalSize) bytes were declared"
            )
        }
        return Int(result)
    }
}
