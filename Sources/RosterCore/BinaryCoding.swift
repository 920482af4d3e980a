/// A growable byte buffer with little helpers for a compact, versioned binary encoding.
/// The core has no NIO, so this works on plain `[UInt8]`; shells copy into their buffers.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    public mutating func write(_ v: UInt8) { bytes.append(v) }

    public mutating func write(_ v: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }

    public mutating func write(_ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    /// LEB128 varint: small numbers, which most are, take one byte.
    public mutating func writeVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    public mutating func writeSigned(_ v: Int64) {
        writeVarint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))  // zigzag
    }

    public mutating func write(_ s: String) {
        writeVarint(UInt64(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }

    public mutating func write(_ s: String?) {
        write(UInt8(s == nil ? 0 : 1))
        if let s { write(s) }
    }

    public mutating func write(_ list: [String]) {
        writeVarint(UInt64(list.count))
        for s in list { write(s) }
    }

    /// Maps are written in key order, so equal maps always encode to equal bytes.
    public mutating func write(_ map: [String: String]) {
        writeVarint(UInt64(map.count))
        for key in map.keys.sorted() {
            write(key)
            write(map[key]!)
        }
    }

    public mutating func append(_ raw: some Sequence<UInt8>) { bytes.append(contentsOf: raw) }
}

/// Why bytes could not be decoded. Decoding never traps on bad input; it throws this.
public struct DecodingFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "undecodable bytes: \(reason)" }
}

/// Reads what `ByteWriter` wrote, checking every length against what is actually there.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }

    public mutating func readByte() throws(DecodingFailure) -> UInt8 {
        guard offset < bytes.count else { throw DecodingFailure("unexpected end of input") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readUInt32() throws(DecodingFailure) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 { v = v << 8 | UInt32(try readByte()) }
        return v
    }

    public mutating func readUInt64() throws(DecodingFailure) -> UInt64 {
        var v: UInt64 = 0
        for _ in 0..<8 { v = v << 8 | UInt64(try readByte()) }
        return v
    }

    public mutating func readVarint() throws(DecodingFailure) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            guard shift < 64 else { throw DecodingFailure("varint longer than 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    public mutating func readSigned() throws(DecodingFailure) -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    /// A count of items that each take at least one byte; bounded by the bytes left, so a
    /// forged count cannot make the decoder reserve huge arrays.
    public mutating func readCount() throws(DecodingFailure) -> Int {
        let n = try readVarint()
        guard n <= UInt64(remaining) else { throw DecodingFailure("count \(n) exceeds the \(remaining) bytes left") }
        return Int(n)
    }

    public mutating func readString() throws(DecodingFailure) -> String {
        let n = try readCount()
        defer { offset += n }
        return String(decoding: bytes[offset..<offset + n], as: UTF8.self)
    }

    public mutating func readOptionalString() throws(DecodingFailure) -> String? {
        try readByte() == 0 ? nil : try readString()
    }

    public mutating func readStringList() throws(DecodingFailure) -> [String] {
        let n = try readCount()
        var list: [String] = []
        list.reserveCapacity(n)
        for _ in 0..<n { list.append(try readString()) }
        return list
    }

    public mutating func readStringMap() throws(DecodingFailure) -> [String: String] {
        let n = try readCount()
        var map: [String: String] = [:]
        map.reserveCapacity(n)
        for _ in 0..<n {
            let key = try readString()
            map[key] = try readString()
        }
        return map
    }

    public mutating func readBytes(_ n: Int) throws(DecodingFailure) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw DecodingFailure("\(n) bytes wanted, \(remaining) left") }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }
}
