// MARK: - Codes

/// A record type. A struct rather than an enum, so that a query for a type this server does not
/// know still parses and can be answered with "no data".
public struct DNSRecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = DNSRecordType(rawValue: 1)
    public static let ns = DNSRecordType(rawValue: 2)
    public static let cname = DNSRecordType(rawValue: 5)
    public static let soa = DNSRecordType(rawValue: 6)
    public static let txt = DNSRecordType(rawValue: 16)
    public static let aaaa = DNSRecordType(rawValue: 28)
    public static let srv = DNSRecordType(rawValue: 33)
    public static let opt = DNSRecordType(rawValue: 41)
    public static let any = DNSRecordType(rawValue: 255)

    public var description: String {
        switch self {
        case .a: "A"
        case .ns: "NS"
        case .cname: "CNAME"
        case .soa: "SOA"
        case .txt: "TXT"
        case .aaaa: "AAAA"
        case .srv: "SRV"
        case .opt: "OPT"
        case .any: "ANY"
        default: "TYPE\(rawValue)"
        }
    }
}

/// A response code, 12 bits wide: the low 4 live in the header, the high 8 in the EDNS0 OPT
/// record (RFC 6891 §6.1.3), which is why BADVERS (16) can only be sent to an EDNS0 client.
public struct DNSResponseCode: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue & 0xFFF }

    public static let noError = DNSResponseCode(rawValue: 0)
    public static let formatError = DNSResponseCode(rawValue: 1)
    public static let serverFailure = DNSResponseCode(rawValue: 2)
    public static let nameError = DNSResponseCode(rawValue: 3)
    public static let notImplemented = DNSResponseCode(rawValue: 4)
    public static let refused = DNSResponseCode(rawValue: 5)
    public static let badVersion = DNSResponseCode(rawValue: 16)
}

/// The class IN, the only one this server answers.
public let dnsClassInternet: UInt16 = 1

// MARK: - Sections

/// The fixed 12-byte header, minus the section counts, which are derived when writing.
public struct DNSHeader: Hashable, Sendable {
    public var id: UInt16
    public var isResponse = false
    /// 0 is QUERY, the only opcode answered; others get NOTIMP.
    public var opcode: UInt8 = 0
    public var isAuthoritative = false
    public var isTruncated = false
    public var recursionDesired = false
    public var recursionAvailable = false
    /// The full code; when read, the OPT record's high bits are already merged in.
    public var responseCode = DNSResponseCode.noError

    public init(id: UInt16) { self.id = id }
}

public struct DNSQuestion: Hashable, Sendable {
    public var name: DNSName
    public var type: DNSRecordType
    public var recordClass: UInt16

    public init(name: DNSName, type: DNSRecordType, recordClass: UInt16 = dnsClassInternet) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }
}

/// The data of an SOA record (RFC 1035 §3.3.13).
public struct DNSStartOfAuthority: Hashable, Sendable {
    public var primaryServer: DNSName
    public var responsibleMailbox: DNSName
    public var serial: UInt32
    public var refresh: UInt32
    public var retry: UInt32
    public var expire: UInt32
    /// The negative-caching TTL (RFC 2308).
    public var minimum: UInt32

    public init(
        primaryServer: DNSName, responsibleMailbox: DNSName, serial: UInt32, refresh: UInt32, retry: UInt32,
        expire: UInt32, minimum: UInt32
    ) {
        self.primaryServer = primaryServer
        self.responsibleMailbox = responsibleMailbox
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

/// Record data for the types this server writes; anything else is kept as opaque bytes.
public enum DNSRecordData: Hashable, Sendable {
    /// A for IPv4, AAAA for IPv6.
    case address(IPAddress)
    case cname(DNSName)
    /// RFC 2782. The target is written uncompressed, as that RFC requires.
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DNSName)
    case soa(DNSStartOfAuthority)
    /// A type read but not interpreted. Names inside it may be compression pointers into the
    /// message it came from, so it is only for inspection, not for writing into another message.
    case other(type: DNSRecordType, bytes: [UInt8])

    public var type: DNSRecordType {
        switch self {
        case .address(.v4): .a
        case .address(.v6): .aaaa
        case .cname: .cname
        case .srv: .srv
        case .soa: .soa
        case .other(let type, _): type
        }
    }
}

public struct DNSResourceRecord: Hashable, Sendable {
    public var name: DNSName
    public var recordClass: UInt16
    public var ttl: UInt32
    public var data: DNSRecordData

    public init(name: DNSName, ttl: UInt32, data: DNSRecordData, recordClass: UInt16 = dnsClassInternet) {
        self.name = name
        self.recordClass = recordClass
        self.ttl = ttl
        self.data = data
    }

    public var type: DNSRecordType { data.type }
}

/// The EDNS0 OPT pseudo-record (RFC 6891), held apart from the additional records because it
/// describes the message, not a name.
public struct DNSEDNS: Hashable, Sendable {
    /// The largest UDP response the sender can take. Values below 512 mean 512.
    public var udpPayloadSize: UInt16
    public var version: UInt8 = 0
    public var dnssecOK = false
    /// Options, uninterpreted.
    public var options: [UInt8] = []

    public init(udpPayloadSize: UInt16, version: UInt8 = 0, dnssecOK: Bool = false, options: [UInt8] = []) {
        self.udpPayloadSize = udpPayloadSize
        self.version = version
        self.dnssecOK = dnssecOK
        self.options = options
    }
}

// MARK: - Message

/// A whole DNS message (RFC 1035 §4.1). Reading is bounds-checked throughout: garbage throws a
/// `DNSWireError` and never traps. Writing is in `DNSMessage+Encoding.swift`.
public struct DNSMessage: Hashable, Sendable {
    public var header: DNSHeader
    public var questions: [DNSQuestion] = []
    public var answers: [DNSResourceRecord] = []
    public var authorities: [DNSResourceRecord] = []
    public var additionals: [DNSResourceRecord] = []
    public var edns: DNSEDNS?

    public init(header: DNSHeader) { self.header = header }

    /// Reads only the header: enough to answer FORMERR to a message whose body is broken, or to
    /// notice that a packet is itself a response and must not be answered.
    public static func decodeHeader(_ bytes: [UInt8]) throws(DNSWireError) -> DNSHeader {
        var reader = DNSReader(bytes)
        return try readHeader(&reader).header
    }

    public init(decoding bytes: [UInt8]) throws(DNSWireError) {
        var reader = DNSReader(bytes)
        let (header, counts) = try Self.readHeader(&reader)
        self.header = header
        for _ in 0..<counts[0] {
            let name = try reader.readName()
            let type = DNSRecordType(rawValue: try reader.readUInt16())
            questions.append(DNSQuestion(name: name, type: type, recordClass: try reader.readUInt16()))
        }
        for _ in 0..<counts[1] { answers.append(try Self.readRecord(&reader)) }
        for _ in 0..<counts[2] { authorities.append(try Self.readRecord(&reader)) }
        for _ in 0..<counts[3] {
            let start = reader.offset
            let name = try reader.readName()
            if try reader.readUInt16() == DNSRecordType.opt.rawValue {
                guard edns == nil, name == .root else { throw .badOPTRecord }
                let size = try reader.readUInt16()
                let extended = try reader.readUInt32()
                let options = try reader.readBytes(Int(try reader.readUInt16()))
                edns = DNSEDNS(
                    udpPayloadSize: size, version: UInt8(truncatingIfNeeded: extended >> 16),
                    dnssecOK: extended & 0x8000 != 0, options: options)
                self.header.responseCode.rawValue |= UInt16(extended >> 24) << 4
            } else {
                reader.offset = start
                additionals.append(try Self.readRecord(&reader))
            }
        }
    }

    private static func readHeader(_ reader: inout DNSReader) throws(DNSWireError) -> (header: DNSHeader, counts: [Int])
    {
        var header = DNSHeader(id: try reader.readUInt16())
        let flags = try reader.readUInt16()
        header.isResponse = flags & 0x8000 != 0
        header.opcode = UInt8(truncatingIfNeeded: flags >> 11) & 0x0F
        header.isAuthoritative = flags & 0x0400 != 0
        header.isTruncated = flags & 0x0200 != 0
        header.recursionDesired = flags & 0x0100 != 0
        header.recursionAvailable = flags & 0x0080 != 0
        header.responseCode = DNSResponseCode(rawValue: flags & 0x000F)
        var counts: [Int] = []
        for _ in 0..<4 { counts.append(Int(try reader.readUInt16())) }
        return (header, counts)
    }

    private static func readRecord(_ reader: inout DNSReader) throws(DNSWireError) -> DNSResourceRecord {
        let name = try reader.readName()
        let type = DNSRecordType(rawValue: try reader.readUInt16())
        let recordClass = try reader.readUInt16()
        let ttl = try reader.readUInt32()
        let length = Int(try reader.readUInt16())
        let end = reader.offset + length
        guard reader.remaining >= length else {
            throw .truncated(offset: reader.offset, needed: length - reader.remaining)
        }
        let data: DNSRecordData
        switch type {
        case .a where length == 4: data = .address(.v4(try reader.readBytes(4)))
        case .aaaa where length == 16: data = .address(.v6(try reader.readBytes(16)))
        case .a, .aaaa: throw .badRecordData(type: type.rawValue)
        case .cname: data = .cname(try reader.readName())
        case .srv:
            data = .srv(
                priority: try reader.readUInt16(), weight: try reader.readUInt16(), port: try reader.readUInt16(),
                target: try reader.readName())
        case .soa:
            data = .soa(
                DNSStartOfAuthority(
                    primaryServer: try reader.readName(), responsibleMailbox: try reader.readName(),
                    serial: try reader.readUInt32(), refresh: try reader.readUInt32(), retry: try reader.readUInt32(),
                    expire: try reader.readUInt32(), minimum: try reader.readUInt32()))
        default: data = .other(type: type, bytes: try reader.readBytes(length))
        }
        guard reader.offset == end else { throw .badRecordData(type: type.rawValue) }
        return DNSResourceRecord(name: name, ttl: ttl, data: data, recordClass: recordClass)
    }
}
