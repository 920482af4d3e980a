/// The binary encoding of records, shared by the write-ahead log, snapshots and the wire.
///
/// It is versioned by a leading byte; a reader refuses versions it does not know rather than
/// guessing. JSON would be simpler but is several times larger and slower (DESIGN.md, "Wire").
public enum RecordCodec {
    public static let version: UInt8 = 1

    public static func encode(_ record: Record) -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        encode(record, into: &w)
        return w.bytes
    }

    public static func encode(_ record: Record, into w: inout ByteWriter) {
        w.write(version)
        w.write(record.key)
        w.write(record.serviceName)
        w.write(record.origin)
        w.writeSigned(record.stamp.physicalMillis)
        w.writeVarint(UInt64(record.stamp.logical))
        let entries = record.clock.sortedEntries
        w.writeVarint(UInt64(entries.count))
        for entry in entries {
            w.write(entry.node)
            w.writeVarint(entry.counter)
        }
        if let instance = record.instance {
            w.write(UInt8(1))
            encode(instance, into: &w)
        } else {
            w.write(UInt8(0))
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodingFailure) -> Record {
        var r = ByteReader(bytes)
        let record = try decode(from: &r)
        guard r.remaining == 0 else { throw DecodingFailure("\(r.remaining) trailing bytes after a record") }
        return record
    }

    public static func decode(from r: inout ByteReader) throws(DecodingFailure) -> Record {
        let v = try r.readByte()
        guard v == version else { throw DecodingFailure("record encoding version \(v), this build reads \(version)") }
        let key = try r.readString()
        let serviceName = try r.readString()
        let origin = try r.readString()
        let physical = try r.readSigned()
        let logical = try r.readVarint()
        guard logical <= UInt64(UInt32.max) else { throw DecodingFailure("logical clock out of range") }
        let n = try r.readCount()
        var counters: [NodeID: UInt64] = [:]
        for _ in 0..<n {
            let node = try r.readString()
            counters[node] = try r.readVarint()
        }
        let instance: ServiceInstance? = try r.readByte() == 0 ? nil : try decodeInstance(from: &r)
        return Record(
            key: key, serviceName: serviceName, instance: instance, clock: VectorClock(counters),
            stamp: HLCTimestamp(physicalMillis: physical, logical: UInt32(logical)), origin: origin)
    }

    // MARK: - Instance

    static func encode(_ i: ServiceInstance, into w: inout ByteWriter) {
        w.write(i.serviceName)
        w.write(i.instanceID)
        w.write(i.host)
        w.writeVarint(UInt64(i.port))
        w.write(i.tags)
        w.write(i.metadata)
        w.write(i.version)
        w.write(i.capabilities)
        w.write(i.dependencies)
        w.write(i.endpoints)
        w.write(i.deployment?.rawValue)
        w.write(i.region)
        w.write(i.zone)
        w.writeVarint(UInt64(i.weight))
        w.write(i.status.rawValue)
        w.writeSigned(i.registeredAt.millisecondsSinceEpoch)
        w.writeSigned(i.lastHeartbeat.millisecondsSinceEpoch)
        w.write(i.node)
        w.writeVarint(UInt64(i.checks.count))
        for c in i.checks { encode(c, into: &w) }
    }

    static func decodeInstance(from r: inout ByteReader) throws(DecodingFailure) -> ServiceInstance {
        let serviceName = try r.readString()
        let instanceID = try r.readString()
        let host = try r.readString()
        let port = try r.readVarint()
        let tags = try r.readStringList()
        let metadata = try r.readStringMap()
        let version = try r.readOptionalString()
        let capabilities = try r.readStringList()
        let dependencies = try r.readStringList()
        let endpoints = try r.readStringMap()
        let deploymentRaw = try r.readOptionalString()
        let region = try r.readOptionalString()
        let zone = try r.readOptionalString()
        let weight = try r.readVarint()
        let statusRaw = try r.readString()
        let registeredAt = try r.readSigned()
        let lastHeartbeat = try r.readSigned()
        let node = try r.readString()
        let checkCount = try r.readCount()
        var checks: [HealthCheck] = []
        for _ in 0..<checkCount { checks.append(try decodeCheck(from: &r)) }
        guard port <= 65535, weight <= UInt64(Int32.max) else { throw DecodingFailure("port or weight out of range") }
        guard let status = ServiceStatus(rawValue: statusRaw) else { throw DecodingFailure("unknown status '\(statusRaw)'") }
        var deployment: Deployment?
        if let deploymentRaw {
            guard let d = Deployment(rawValue: deploymentRaw) else { throw DecodingFailure("unknown deployment '\(deploymentRaw)'") }
            deployment = d
        }
        return ServiceInstance(
            serviceName: serviceName, instanceID: instanceID, host: host, port: Int(port), tags: tags,
            metadata: metadata, version: version, capabilities: capabilities, dependencies: dependencies,
            endpoints: endpoints, deployment: deployment, region: region, zone: zone, weight: Int(weight),
            status: status, registeredAt: Timestamp(millisecondsSinceEpoch: registeredAt),
            lastHeartbeat: Timestamp(millisecondsSinceEpoch: lastHeartbeat), node: node, checks: checks)
    }

    // MARK: - Check

    static func encode(_ c: HealthCheck, into w: inout ByteWriter) {
        w.write(c.checkID)
        w.write(c.name)
        w.write(c.kind.rawValue)
        w.write(c.target)
        w.write(c.method)
        for d in [c.interval, c.timeout, c.ttl, c.deregisterCriticalServiceAfter] {
            w.writeSigned(d?.milliseconds ?? -1)
        }
        w.writeVarint(UInt64(c.successBeforePassing))
        w.writeVarint(UInt64(c.failuresBeforeCritical))
        w.write(c.status.rawValue)
        w.write(c.output)
        w.write(c.notes)
    }

    static func decodeCheck(from r: inout ByteReader) throws(DecodingFailure) -> HealthCheck {
        let checkID = try r.readString()
        let name = try r.readString()
        let kindRaw = try r.readString()
        let target = try r.readOptionalString()
        let method = try r.readOptionalString()
        var durations: [GoDuration?] = []
        for _ in 0..<4 {
            let ms = try r.readSigned()
            durations.append(ms < 0 ? nil : GoDuration(milliseconds: ms))
        }
        let success = try r.readVarint()
        let failures = try r.readVarint()
        let statusRaw = try r.readString()
        let output = try r.readString()
        let notes = try r.readString()
        guard let kind = CheckKind(rawValue: kindRaw), let status = CheckStatus(rawValue: statusRaw) else {
            throw DecodingFailure("unknown check kind '\(kindRaw)' or status '\(statusRaw)'")
        }
        guard success <= 1000, failures <= 1000 else { throw DecodingFailure("check thresholds out of range") }
        return HealthCheck(
            checkID: checkID, name: name, kind: kind, target: target, method: method, interval: durations[0],
            timeout: durations[1], ttl: durations[2], deregisterCriticalServiceAfter: durations[3],
            successBeforePassing: Int(success), failuresBeforeCritical: Int(failures), status: status,
            output: output, notes: notes)
    }
}
