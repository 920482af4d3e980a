// MARK: - Errors

/// Why a DNS message could not be read. Every malformed input ends in one of these instead of a
/// trap, so that the server can answer FORMERR (or drop the packet) and carry on.
public enum DNSWireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The message ended at `offset` while `needed` more bytes were expected.
    case truncated(offset: Int, needed: Int)
    /// A label length byte with the reserved `01`/`10` top bits (RFC 6891 §5 retired them).
    case unsupportedLabelType(offset: Int)
    /// A compression pointer that does not point strictly backwards: it could loop.
    case badCompressionPointer(offset: Int)
    /// A name longer than 255 bytes on the wire (RFC 1035 §2.3.4).
    case nameTooLong
    /// A label longer than 63 bytes (RFC 1035 §2.3.4).
    case labelTooLong(length: Int)
    /// An empty label in the middle of a name, e.g. `a..b`.
    case emptyLabel
    /// A record whose RDATA does not match its declared length or its type's layout.
    case badRecordData(type: UInt16)
    /// More than one OPT record, or an OPT record not owned by the root (RFC 6891 §6.1.1).
    case badOPTRecord

    public var description: String {
        switch self {
        case .truncated(let offset, let needed):
            "message ends at byte \(offset) but \(needed) more bytes were expected"
        case .unsupportedLabelType(let offset):
            "label at byte \(offset) uses a reserved label type; only plain labels and pointers are valid"
        case .badCompressionPointer(let offset):
            "compression pointer at byte \(offset) does not point to an earlier name"
        case .nameTooLong: "name is longer than 255 bytes; a DNS name must fit in 255"
        case .labelTooLong(let length): "label of \(length) bytes; a DNS label must be 1 to 63 bytes"
        case .emptyLabel: "name has an empty label; labels must be 1 to 63 bytes"
        case .badRecordData(let type): "record of type \(type) has RDATA that does not match its length or layout"
        case .badOPTRecord: "OPT record is repeated or not owned by the root; at most one, owned by '.', is valid"
        }
    }
}

// MARK: - Reader

/// A bounds-checked cursor over a whole message. It keeps the whole message, not a slice,
/// because compression pointers are offsets from the message's first byte.
struct DNSReader {
    let bytes: [UInt8]
    var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    private func need(_ count: Int) throws(DNSWireError) {
        guard count >= 0, remaining >= count else {
            throw .truncated(offset: offset, needed: count - max(remaining, 0))
        }
    }

    mutating func readUInt8() throws(DNSWireError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readUInt16() throws(DNSWireError) -> UInt16 {
        try need(2)
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func readUInt32() throws(DNSWireError) -> UInt32 {
        try need(4)
        defer { offset += 4 }
        return (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[offset + $1]) }
    }

    mutating func readBytes(_ count: Int) throws(DNSWireError) -> [UInt8] {
        try need(count)
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// Reads a possibly compressed name and leaves the cursor after its in-place part.
    ///
    /// Termination is guaranteed twice over: every pointer must point before the start of the
    /// run of labels it ends (so the positions strictly decrease), and the name is capped at
    /// 255 bytes.
    mutating func readName() throws(DNSWireError) -> DNSName {
        var labels: [[UInt8]] = []
        var wireLength = 1
        var position = offset
        var runStart = offset
        var resumeAt: Int?
        while true {
            guard position < bytes.count else { throw .truncated(offset: position, needed: 1) }
            let length = Int(bytes[position])
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    offset = resumeAt ?? position + 1
                    return DNSName(validatedLabels: labels)
                }
                guard position + 1 + length <= bytes.count else {
                    throw .truncated(offset: position + 1, needed: position + 1 + length - bytes.count)
                }
                wireLength += length + 1
                guard wireLength <= DNSName.maxWireLength else { throw .nameTooLong }
                labels.append(Array(bytes[position + 1..<position + 1 + length]))
                position += 1 + length
            case 0xC0:
                guard position + 1 < bytes.count else { throw .truncated(offset: position + 1, needed: 1) }
                let target = (length & 0x3F) << 8 | Int(bytes[position + 1])
                guard target < runStart else { throw .badCompressionPointer(offset: position) }
                if resumeAt == nil { resumeAt = position + 2 }
                position = target
                runStart = target
            default:
                throw .unsupportedLabelType(offset: position)
            }
        }
    }
}

// MARK: - Writer

/// An append-only message buffer that compresses names (RFC 1035 §4.1.4) and can roll back to
/// a mark, so that a record that does not fit is removed together with every compression
/// target it introduced: a later pointer into dropped bytes would corrupt the message.
struct DNSWriter {
    private(set) var bytes: [UInt8] = []
    /// Lower-cased label suffix → the offset where it was written. Only offsets below 0x4000
    /// can be pointed at.
    private var suffixes: [[[UInt8]]: Int] = [:]

    var count: Int { bytes.count }

    mutating func writeUInt8(_ value: UInt8) { bytes.append(value) }

    mutating func writeUInt16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    mutating func writeUInt32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }

    mutating func writeBytes(_ value: [UInt8]) { bytes.append(contentsOf: value) }

    mutating func setUInt16(_ value: UInt16, at offset: Int) {
        guard offset >= 0, offset + 1 < bytes.count else { return }
        bytes[offset] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value)
    }

    /// Writes `name`, replacing its longest already-written suffix by a pointer when `compress`
    /// is set. Either way its suffixes become pointer targets for later names.
    mutating func writeName(_ name: DNSName, compress: Bool = true) {
        let lowered = name.labels.map(DNSName.lowercased)
        for index in lowered.indices {
            let suffix = Array(lowered[index...])
            if compress, let target = suffixes[suffix] {
                writeUInt16(0xC000 | UInt16(target))
                return
            }
            if bytes.count < 0x4000, suffixes[suffix] == nil { suffixes[suffix] = bytes.count }
            writeUInt8(UInt8(truncatingIfNeeded: name.labels[index].count))
            writeBytes(name.labels[index])
        }
        writeUInt8(0)
    }

    /// Forgets everything written from `mark` on.
    mutating func rollBack(to mark: Int) {
        guard mark < bytes.count else { return }
        bytes.removeSubrange(mark...)
        suffixes = suffixes.filter { $0.value < mark }
    }
}
