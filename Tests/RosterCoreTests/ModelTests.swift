import Foundation
import Testing
@testable import RosterCore

@Suite struct ServiceStatusTests {
    @Test func theNormalLifecycleIsAllowed() {
        #expect(ServiceStatus.starting.canMove(to: .running))
        #expect(ServiceStatus.running.canMove(to: .stopping))
        #expect(ServiceStatus.stopping.canMove(to: .stopped))
    }

    @Test func healthMovesAndRecoveryAreAllowed() {
        #expect(ServiceStatus.running.canMove(to: .unhealthy))
        #expect(ServiceStatus.running.canMove(to: .unknown))
        #expect(ServiceStatus.unhealthy.canMove(to: .running))
        #expect(ServiceStatus.unknown.canMove(to: .running))
    }

    @Test func movesThatMakeNoSenseAreRefused() {
        #expect(!ServiceStatus.stopped.canMove(to: .running))
        #expect(!ServiceStatus.stopped.canMove(to: .starting))
        #expect(!ServiceStatus.running.canMove(to: .starting))
        #expect(!ServiceStatus.stopping.canMove(to: .running))
        #expect(ServiceStatus.stopped.allowedMoves.isEmpty)
    }
}

@Suite struct ValidationTests {
    let validator = InstanceValidator()

    func field(of instance: ServiceInstance, portRequired: Bool = true) -> String? {
        do {
            try validator.validate(instance, portRequired: portRequired)
            return nil
        } catch {
            return error.field
        }
    }

    @Test func aPlainInstanceIsValid() {
        #expect(field(of: makeInstance("web-1")) == nil)
    }

    @Test func portsOutsideTheRangeAreRefused() {
        #expect(field(of: makeInstance("web-1", port: 70000)) == "port")
        #expect(field(of: makeInstance("web-1", port: 0)) == "port")
        #expect(field(of: makeInstance("web-1", port: 0), portRequired: false) == nil)
        #expect(field(of: makeInstance("web-1", port: -1), portRequired: false) == "port")
    }

    @Test func namesMustBeDNSSafeLabels() {
        #expect(field(of: makeInstance("web-1", service: "my service")) == "service_name")
        #expect(field(of: makeInstance("web-1", service: "-web")) == "service_name")
        #expect(field(of: makeInstance("web-1", service: "web_x")) == "service_name")
        #expect(field(of: makeInstance("web 1")) == "instance_id")
        #expect(field(of: makeInstance("web_1")) == nil)
        #expect(field(of: makeInstance(String(repeating: "a", count: 64))) == "instance_id")
        #expect(field(of: makeInstance("")) == "instance_id")
    }

    @Test func sizesAreBounded() {
        var instance = makeInstance("web-1")
        instance.metadata = ["k": String(repeating: "x", count: 513)]
        #expect(field(of: instance) == "metadata.k")
        instance.metadata = Dictionary(uniqueKeysWithValues: (0..<65).map { ("k\($0)", "v") })
        #expect(field(of: instance) == "metadata")
        instance.metadata = [:]
        instance.tags = Array(repeating: "t", count: 65)
        #expect(field(of: instance) == "tags")
        instance.tags = [String(repeating: "t", count: 256)]
        #expect(field(of: instance) == "tags[0]")
    }

    @Test func checksNeedWhatTheirKindNeeds() {
        var instance = makeInstance("web-1")
        instance.checks = [HealthCheck(checkID: "c", name: "c", kind: .ttl)]
        #expect(field(of: instance) == "checks[0].ttl")
        instance.checks = [HealthCheck(checkID: "c", name: "c", kind: .http, target: "ftp://x", interval: .seconds(5))]
        #expect(field(of: instance) == "checks[0].target")
        instance.checks = [HealthCheck(checkID: "c", name: "c", kind: .tcp, target: "localhost:1", interval: GoDuration(milliseconds: 10))]
        #expect(field(of: instance) == "checks[0].interval")
        instance.checks = [HealthCheck(checkID: "c", name: "c", kind: .ttl, ttl: .seconds(1)),
                           HealthCheck(checkID: "c", name: "d", kind: .ttl, ttl: .seconds(1))]
        #expect(field(of: instance) == "checks[1].check_id")
    }
}

@Suite struct DurationAndTimeTests {
    @Test func goDurationsParseLikeGo() {
        #expect(GoDuration(parsing: "10s")?.milliseconds == 10_000)
        #expect(GoDuration(parsing: "1m30s")?.milliseconds == 90_000)
        #expect(GoDuration(parsing: "250ms")?.milliseconds == 250)
        #expect(GoDuration(parsing: "1.5h")?.milliseconds == 5_400_000)
        #expect(GoDuration(parsing: "3")?.milliseconds == 3_000)
        #expect(GoDuration(parsing: "10 parsecs") == nil)
        #expect(GoDuration(parsing: "") == nil)
        #expect(GoDuration(parsing: "-5s") == nil)
        #expect(GoDuration.seconds(90).description == "90s")
        #expect(GoDuration(milliseconds: 120_000).description == "2m")
    }

    @Test func timestampsRoundTripThroughRFC3339() throws {
        let samples: [Int64] = [0, 1_700_000_000_123, 951_782_400_000, 4_102_444_799_999]
        for ms in samples {
            let t = Timestamp(millisecondsSinceEpoch: ms)
            #expect(Timestamp(rfc3339: t.description) == t)
        }
        #expect(Timestamp(millisecondsSinceEpoch: 0).description == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(millisecondsSinceEpoch: 951_782_400_000).description == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp(rfc3339: "2026-11-23T14:46:41Z")?.millisecondsSinceEpoch == 1_795_445_201_000)
        #expect(Timestamp(rfc3339: "yesterday") == nil)
    }

    @Test func instancesEncodeAsSnakeCaseJSON() throws {
        let data = try JSONEncoder().encode(makeInstance("web-1"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["service_name"] as? String == "web")
        #expect(object["instance_id"] as? String == "web-1")
        #expect(object["status"] as? String == "RUNNING")
        #expect(object["registered_at"] as? String == "2023-11-14T22:13:20.000Z")
    }
}

@Suite struct CodecTests {
    @Test func recordsRoundTripWithEveryField() throws {
        var instance = makeInstance("web-1", tags: ["a", "b"])
        instance.metadata = ["k": "v", "x": "y"]
        instance.version = "1.2.3"
        instance.capabilities = ["grpc"]
        instance.dependencies = ["db"]
        instance.endpoints = ["http": "/"]
        instance.deployment = .green
        instance.region = "eu"
        instance.zone = "eu-1a"
        instance.weight = 7
        instance.checks = [
            HealthCheck(checkID: "service:web-1", name: "ttl", kind: .ttl, ttl: .seconds(10), deregisterCriticalServiceAfter: .seconds(60), status: .warning, output: "o", notes: "n"),
            HealthCheck(checkID: "h", name: "http", kind: .http, target: "http://x/health", method: "GET", interval: .seconds(5), timeout: .seconds(1), successBeforePassing: 2, failuresBeforeCritical: 3),
        ]
        let record = Record(key: "web-1", serviceName: "web", instance: instance, clock: VectorClock(["a": 3, "b": 1]),
                            stamp: HLCTimestamp(physicalMillis: -5, logical: 9), origin: "a")
        #expect(try RecordCodec.decode(RecordCodec.encode(record)) == record)
        let tombstone = Record(key: "web-1", serviceName: "web", instance: nil, clock: VectorClock(["a": 4]), stamp: .zero, origin: "b")
        #expect(try RecordCodec.decode(RecordCodec.encode(tombstone)) == tombstone)
    }

    @Test func garbageAndTruncationsThrowInsteadOfCrashing() {
        let seed = UInt64.random(in: 0...UInt64.max)
        var rng = SeededRandom(seed: seed)
        let valid = RecordCodec.encode(Record(key: "k", serviceName: "web", instance: makeInstance("k"), clock: VectorClock(["a": 1]), stamp: .zero, origin: "a"))
        for length in 0..<valid.count {
            #expect(throws: DecodingFailure.self) { try RecordCodec.decode(Array(valid.prefix(length))) }
        }
        for _ in 0..<2000 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            _ = try? RecordCodec.decode(bytes)  // must not trap; seed \(seed)
            let random = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? RecordCodec.decode(random)
        }
    }

    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}
