/// Writing a message, with name compression and truncation to a size limit.
extension DNSMessage {
    /// The largest message a TCP frame can carry (RFC 1035 §4.2.2: a 16-bit length prefix).
    public static let maxTCPSize = 65_535
    /// The classic UDP limit for a client that does not announce EDNS0 (RFC 1035 §4.2.1).
    public static let classicUDPSize = 512

    /// Writes the message in at most `maxSize` bytes.
    ///
    /// Records are dropped whole, never cut, and every compression target a dropped record
    /// introduced is forgotten with it. Following RFC 2181 §9, TC is set only if an answer or
    /// authority record had to go: extra records that do not fit are simply left out, because
    /// the client can still ask for them and a TC would make it retry over TCP for nothing. The
    /// OPT record's space is reserved first, since a client that sent one must get one back.
    public func encoded(maxSize: Int = DNSMessage.maxTCPSize) -> [UInt8] {
        var writer = DNSWriter()
        writer.writeUInt16(header.id)
        writer.writeUInt16(0)  // flags, patched below
        for _ in 0..<4 { writer.writeUInt16(0) }  // counts, patched below
        for question in questions.prefix(Int(UInt16.max)) {
            writer.writeName(question.name)
            writer.writeUInt16(question.type.rawValue)
            writer.writeUInt16(question.recordClass)
        }
        let optSize = edns.map { 11 + min($0.options.count, Int(UInt16.max)) } ?? 0
        let budget = max(maxSize, DNSMessage.classicUDPSize) - optSize

        func fit(_ records: [DNSResourceRecord]) -> (written: Int, dropped: Bool) {
            var written = 0
            for record in records {
                let mark = writer.count
                writer.writeRecord(record)
                if writer.count > budget || written == Int(UInt16.max) {
                    writer.rollBack(to: mark)
                    return (written, true)
                }
                written += 1
            }
            return (written, false)
        }

        let answerCount = fit(answers)
        let authorityCount = answerCount.dropped ? (written: 0, dropped: true) : fit(authorities)
        let truncated = header.isTruncated || answerCount.dropped || authorityCount.dropped
        var additionalCount = answerCount.dropped || authorityCount.dropped ? 0 : fit(additionals).written
        if let edns {
            writer.writeOPT(edns, extendedCode: UInt8(truncatingIfNeeded: header.responseCode.rawValue >> 4))
            additionalCount += 1
        }

        var flags = UInt16(header.opcode & 0x0F) << 11 | header.responseCode.rawValue & 0x000F
        if header.isResponse { flags |= 0x8000 }
        if header.isAuthoritative { flags |= 0x0400 }
        if truncated { flags |= 0x0200 }
        if header.recursionDesired { flags |= 0x0100 }
        if header.recursionAvailable { flags |= 0x0080 }
        writer.setUInt16(flags, at: 2)
        writer.setUInt16(UInt16(clamping: min(questions.count, Int(UInt16.max))), at: 4)
        writer.setUInt16(UInt16(clamping: answerCount.written), at: 6)
        writer.setUInt16(UInt16(clamping: authorityCount.written), at: 8)
        writer.setUInt16(UInt16(clamping: additionalCount), at: 10)
        return writer.bytes
    }
}

extension DNSWriter {
    mutating func writeRecord(_ record: DNSResourceRecord) {
        writeName(record.name)
        writeUInt16(record.type.rawValue)
        writeUInt16(record.recordClass)
        writeUInt32(record.ttl)
        let lengthAt = count
        writeUInt16(0)
        let start = count
        switch record.data {
        case .address(let address):
            writeBytes(address.bytes)
        case .cname(let name):
            writeName(name)
        case .srv(let priority, let weight, let port, let target):
            writeUInt16(priority)
            writeUInt16(weight)
            writeUInt16(port)
            writeName(target, compress: false)
        case .soa(let soa):
            writeName(soa.primaryServer)
            writeName(soa.responsibleMailbox)
            for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] { writeUInt32(value) }
        case .other(_, let bytes):
            writeBytes(Array(bytes.prefix(Int(UInt16.max))))
        }
        setUInt16(UInt16(clamping: count - start), at: lengthAt)
    }

    /// RFC 6891 §6.1.2: the class carries the payload size, the TTL the extended code, version
    /// and DO bit.
    mutating func writeOPT(_ edns: DNSEDNS, extendedCode: UInt8) {
        writeUInt8(0)
        writeUInt16(DNSRecordType.opt.rawValue)
        writeUInt16(edns.udpPayloadSize)
        writeUInt32(UInt32(extendedCode) << 24 | UInt32(edns.version) << 16 | (edns.dnssecOK ? 0x8000 : 0))
        let options = Array(edns.options.prefix(Int(UInt16.max)))
        writeUInt16(UInt16(clamping: options.count))
        writeBytes(options)
    }
}
