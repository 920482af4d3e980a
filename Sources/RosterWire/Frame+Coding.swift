import NIOCore

// MARK: - Encoding

extension Frame {
    /// Appends this frame to `out`, LZ4-compressed when the payload is at least
    /// `limits.compressionThreshold` bytes and compression actually makes the frame smaller.
    ///
    /// The compressed form is written straight into `out`; if it does not pay off, `out` is
    /// rolled back and the raw payload written instead, so incompressible data costs one failed
    /// compression and no extra copies.
    ///
    /// - Throws: ``WireError`` `.frameTooLarge` if even the best form exceeds
    ///   `limits.maxFrameBytes`: the peer would refuse it, so it is refused here, before sending.
    /// - Returns: the sizes of the frame, for metrics.
    @discardableResult
    public func encode(limits: FrameLimits, into out: inout ByteBuffer) throws -> FrameStats {
        let payloadBytes = self.payload.readableBytes
        let frameStart = out.writerIndex

        if payloadBytes >= limits.compressionThreshold,
            payloadBytes <= limits.maxDecompressedBytes,
            payloadBytes > 0
        {
            out.writeInteger(UInt32(0))  // length, patched below
            out.writeInteger(FrameHeader(flags: .lz4Compressed).byte)
            out.writeInteger(UInt32(payloadBytes))
            let blockBytes = self.payload.withUnsafeReadableBytes { LZ4.compress($0, appendingTo: &out) }
            let frameLength = Self.headerBytes + Self.uncompressedLengthBytes + blockBytes
            if frameLength < Self.headerBytes + payloadBytes, frameLength <= limits.maxFrameBytes {
                out.setInteger(UInt32(frameLength), at: frameStart)
                return FrameStats(
                    payloadBytes: payloadBytes,
                    wireBytes: Self.lengthPrefixBytes + frameLength,
                    compressed: true
                )
            }
            out.moveWriterIndex(to: frameStart)
        }

        let frameLength = Self.headerBytes + payloadBytes
        guard frameLength <= limits.maxFrameBytes else {
            throw WireError.outboundFrameTooLarge(payloadBytes: payloadBytes, limit: limits.maxFrameBytes)
        }
        out.writeInteger(UInt32(frameLength))
        out.writeInteger(FrameHeader(flags: []).byte)
        out.writeImmutableBuffer(self.payload)
        return FrameStats(
            payloadBytes: payloadBytes,
            wireBytes: Self.lengthPrefixBytes + frameLength,
            compressed: false
        )
    }
}

// MARK: - Decoding

extension Frame {
    /// Reads one frame from the front of `buffer`, or returns `nil` if the frame is not complete
    /// yet. On `nil`, `buffer` is left untouched, so the caller can retry once more bytes arrive.
    ///
    /// Everything that can be judged from a prefix is judged as soon as that prefix is present,
    /// not when the whole frame has arrived: the length against `maxFrameBytes` after 4 bytes,
    /// the header after 5, the declared uncompressed size after 9. A peer announcing a 4 GiB
    /// frame is refused at once, and nothing is buffered for it.
    ///
    /// - Parameter allocator: allocates the buffer for a decompressed payload. Uncompressed
    ///   payloads are returned as slices of `buffer`, without copying.
    /// - Throws: ``WireError`` for any frame that this node must not accept.
    public static func decode(
        from buffer: inout ByteBuffer,
        limits: FrameLimits,
        allocator: ByteBufferAllocator
    ) throws -> (frame: Frame, stats: FrameStats)? {
        let start = buffer.readerIndex
        guard let rawLength = buffer.getInteger(at: start, as: UInt32.self) else { return nil }
        let frameLength = Int(rawLength)
        guard frameLength > 0 else { throw WireError.emptyFrame() }
        guard frameLength <= limits.maxFrameBytes else {
            throw WireError.frameTooLarge(declared: frameLength, limit: limits.maxFrameBytes)
        }

        guard let headerByte = buffer.getInteger(at: start + Self.lengthPrefixBytes, as: UInt8.self) else {
            return nil
        }
        let header = try FrameHeader(validating: headerByte)
        let bodyStart = start + Self.lengthPrefixBytes + Self.headerBytes
        let bodyLength = frameLength - Self.headerBytes

        guard header.flags.contains(.lz4Compressed) else {
            guard buffer.readableBytes >= Self.lengthPrefixBytes + frameLength,
                let payload = buffer.getSlice(at: bodyStart, length: bodyLength)
            else { return nil }
            buffer.moveReaderIndex(to: bodyStart + bodyLength)
            return (
                Frame(payload: payload),
                FrameStats(payloadBytes: bodyLength, wireBytes: Self.lengthPrefixBytes + frameLength, compressed: false)
            )
        }

        let blockLength = bodyLength - Self.uncompressedLengthBytes
        guard blockLength >= 1 else {
            throw WireError.malformedFrame(
                "compressed frame is \(frameLength) bytes long; it needs at least "
                    + "\(Self.headerBytes + Self.uncompressedLengthBytes + 1) for the header, "
                    + "the uncompressed length and an LZ4 block"
            )
        }
        guard let rawDeclared = buffer.getInteger(at: bodyStart, as: UInt32.self) else { return nil }
        let declared = Int(rawDeclared)
        guard declared <= limits.maxDecompressedBytes else {
            throw WireError.decompressedTooLarge(declared: declared, limit: limits.maxDecompressedBytes)
        }
        guard declared <= blockLength * LZ4.maxExpansionRatio else {
            throw WireError.decompressionFailed(
                "frame declares \(declared) uncompressed bytes from an LZ4 block of \(blockLength) bytes; "
                    + "LZ4 expands at most \(LZ4.maxExpansionRatio)×, so the frame is corrupt"
            )
        }

        let blockStart = bodyStart + Self.uncompressedLengthBytes
        guard buffer.readableBytes >= Self.lengthPrefixBytes + frameLength,
            let block = buffer.getSlice(at: blockStart, length: blockLength)
        else { return nil }

        var payload = allocator.buffer(capacity: declared)
        try block.withUnsafeReadableBytes { source in
            try LZ4.decompress(
                source,
                originalSize: declared,
                maxSize: limits.maxDecompressedBytes,
                appendingTo: &payload
            )
        }
        buffer.moveReaderIndex(to: blockStart + blockLength)
        return (
            Frame(payload: payload),
            FrameStats(payloadBytes: declared, wireBytes: Self.lengthPrefixBytes + frameLength, compressed: true)
        )
    }
}
