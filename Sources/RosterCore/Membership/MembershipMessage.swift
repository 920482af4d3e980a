// MARK: - Messages

/// What membership peers say to each other. Every probe message piggybacks `gossip`: a short
/// list of recent membership changes, so dissemination costs no extra messages.
public enum MembershipMessage: Sendable, Equatable {
    /// "Are you there?" Answered with `ack` carrying the same sequence. Also used, untracked,
    /// to push fresh gossip; the ack then carries the receiver's gossip back.
    case ping(sequence: UInt64, gossip: [Member])
    /// "I am here", from the pinged node itself, with its current incarnation.
    case ack(sequence: UInt64, from: MemberIdentity, incarnation: UInt64, gossip: [Member])
    /// "Please ping `target` for me": the prober's direct ping went unanswered.
    case pingRequest(sequence: UInt64, target: MemberIdentity, gossip: [Member])
    /// An intermediary relays the target's ack back to the prober, under the prober's sequence.
    case indirectAck(sequence: UInt64, target: MemberIdentity, incarnation: UInt64, gossip: [Member])
    /// An intermediary could not reach the target either. Lifeguard: it proves the prober's own
    /// network works, so a missing nack raises the prober's local health multiplier.
    case nack(sequence: UInt64, from: MemberIdentity, gossip: [Member])
    /// A node asks a seed to let it in. It carries the joiner's own record, alive.
    case join(Member)
    /// The seed's whole table, so the joiner learns everyone at once.
    case joinReply(members: [Member])
}

// MARK: - Encoding

extension MembershipMessage {
    /// Type bytes. New message kinds get new numbers; numbers are never reused.
    enum Kind: UInt8 {
        case ping = 1
        case ack = 2
        case pingRequest = 3
        case indirectAck = 4
        case nack = 5
        case join = 6
        case joinReply = 7
    }

    /// Decoding refuses more gossip than this per message, whatever the count says.
    public static let maxDecodedGossip = 256
    /// Decoding refuses a join reply with more members than this.
    public static let maxDecodedMembers = 16_384

    /// Writes a leading type byte, then the fields. Integers are varints.
    public func encode(into writer: inout ByteWriter) {
        switch self {
        case .ping(let sequence, let gossip):
            writer.write(Kind.ping.rawValue)
            writer.writeVarint(sequence)
            Self.write(gossip, into: &writer)
        case .ack(let sequence, let from, let incarnation, let gossip):
            writer.write(Kind.ack.rawValue)
            writer.writeVarint(sequence)
            Self.write(from, into: &writer)
            writer.writeVarint(incarnation)
            Self.write(gossip, into: &writer)
        case .pingRequest(let sequence, let target, let gossip):
            writer.write(Kind.pingRequest.rawValue)
            writer.writeVarint(sequence)
            Self.write(target, into: &writer)
            Self.write(gossip, into: &writer)
        case .indirectAck(let sequence, let target, let incarnation, let gossip):
            writer.write(Kind.indirectAck.rawValue)
            writer.writeVarint(sequence)
            Self.write(target, into: &writer)
            writer.writeVarint(incarnation)
            Self.write(gossip, into: &writer)
        case .nack(let sequence, let from, let gossip):
            writer.write(Kind.nack.rawValue)
            writer.writeVarint(sequence)
            Self.write(from, into: &writer)
            Self.write(gossip, into: &writer)
        case .join(let member):
            writer.write(Kind.join.rawValue)
            Self.write(member, into: &writer)
        case .joinReply(let members):
            writer.write(Kind.joinReply.rawValue)
            Self.write(members, into: &writer)
        }
    }

    /// The encoded bytes of this message alone.
    public var encoded: [UInt8] {
        var writer = ByteWriter()
        encode(into: &writer)
        return writer.bytes
    }

    /// Reads one message. Every length and count is checked against the bytes that are there,
    /// and counts are capped, so garbage throws `DecodingFailure` and never traps.
    public static func decode(from reader: inout ByteReader) throws(DecodingFailure) -> MembershipMessage {
        let type = try reader.readByte()
        guard let kind = Kind(rawValue: type) else {
            throw DecodingFailure("unknown membership message type \(type), expected 1...7")
        }
        switch kind {
        case .ping:
            let sequence = try reader.readVarint()
            return .ping(sequence: sequence, gossip: try readMembers(from: &reader, max: maxDecodedGossip))
        case .ack:
            let sequence = try reader.readVarint()
            let from = try readIdentity(from: &reader)
            let incarnation = try reader.readVarint()
            let gossip = try readMembers(from: &reader, max: maxDecodedGossip)
            return .ack(sequence: sequence, from: from, incarnation: incarnation, gossip: gossip)
        case .pingRequest:
            let sequence = try reader.readVarint()
            let target = try readIdentity(from: &reader)
            let gossip = try readMembers(from: &reader, max: maxDecodedGossip)
            return .pingRequest(sequence: sequence, target: target, gossip: gossip)
        case .indirectAck:
            let sequence = try reader.readVarint()
            let target = try readIdentity(from: &reader)
            let incarnation = try reader.readVarint()
            let gossip = try readMembers(from: &reader, max: maxDecodedGossip)
            return .indirectAck(sequence: sequence, target: target, incarnation: incarnation, gossip: gossip)
        case .nack:
            let sequence = try reader.readVarint()
            let from = try readIdentity(from: &reader)
            return .nack(sequence: sequence, from: from, gossip: try readMembers(from: &reader, max: maxDecodedGossip))
        case .join:
            return .join(try readMember(from: &reader))
        case .joinReply:
            return .joinReply(members: try readMembers(from: &reader, max: maxDecodedMembers))
        }
    }

    /// Decodes a buffer that must hold exactly one message.
    public static func decode(bytes: [UInt8]) throws(DecodingFailure) -> MembershipMessage {
        var reader = ByteReader(bytes)
        let message = try decode(from: &reader)
        guard reader.remaining == 0 else {
            throw DecodingFailure("\(reader.remaining) bytes after the membership message, expected none")
        }
        return message
    }

    // MARK: Fields

    static func write(_ identity: MemberIdentity, into writer: inout ByteWriter) {
        writer.write(identity.name)
        writer.writeVarint(identity.generation)
        writer.write(identity.address)
    }

    static func write(_ member: Member, into writer: inout ByteWriter) {
        write(member.identity, into: &writer)
        writer.write(stateByte(member.state))
        writer.writeVarint(member.incarnation)
    }

    static func write(_ members: [Member], into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(members.count))
        for member in members { write(member, into: &writer) }
    }

    static func readIdentity(from reader: inout ByteReader) throws(DecodingFailure) -> MemberIdentity {
        let name = try reader.readString()
        guard !name.isEmpty else { throw DecodingFailure("empty member name, expected a node name") }
        let generation = try reader.readVarint()
        let address = try reader.readString()
        return MemberIdentity(name: name, generation: generation, address: address)
    }

    static func readMember(from reader: inout ByteReader) throws(DecodingFailure) -> Member {
        let identity = try readIdentity(from: &reader)
        let raw = try reader.readByte()
        guard let state = state(fromByte: raw) else {
            throw DecodingFailure("member state \(raw) for \(identity.name), expected 0...3")
        }
        let incarnation = try reader.readVarint()
        return Member(identity: identity, state: state, incarnation: incarnation)
    }

    static func readMembers(from reader: inout ByteReader, max: Int) throws(DecodingFailure) -> [Member] {
        let count = try reader.readCount()
        guard count <= max else { throw DecodingFailure("\(count) members in one message, expected at most \(max)") }
        var members: [Member] = []
        members.reserveCapacity(count)
        for _ in 0..<count { members.append(try readMember(from: &reader)) }
        return members
    }

    static func stateByte(_ state: MemberState) -> UInt8 {
        switch state {
        case .alive: 0
        case .suspect: 1
        case .failed: 2
        case .left: 3
        }
    }

    static func state(fromByte byte: UInt8) -> MemberState? {
        switch byte {
        case 0: .alive
        case 1: .suspect
        case 2: .failed
        case 3: .left
        default: nil
        }
    }
}
