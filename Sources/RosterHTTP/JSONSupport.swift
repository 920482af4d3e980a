import Foundation
import Hummingbird
import RosterCore

/// Reading and writing JSON bodies with the limits and error shapes of the API.
enum JSONSupport {
    /// Collects a request body up to `limit` bytes; a larger body is refused with 413 before
    /// it is decoded, so one request cannot make the node buffer unbounded data.
    static func body(of request: Request, limit: Int) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: limit)
        } catch {
            throw APIError(.contentTooLarge, field: "body", message: "is larger than the \(limit / 1024) KiB limit")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int) async throws -> T {
        let buffer = try await body(of: request, limit: limit)
        guard buffer.readableBytes > 0 else { throw APIError(.badRequest, field: "body", message: "is empty; a JSON object is required") }
        do {
            return try JSONDecoder().decode(T.self, from: buffer)
        } catch let error as DecodingError {
            throw APIError.fromDecoding(error)
        }
    }

    static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let data = try encoder.encode(value)
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Pre-encoded bytes, for responses served from cache.
    static func response(bytes: ByteBuffer, headers: HTTPFields) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: .ok, headers: fields, body: ResponseBody(byteBuffer: bytes))
    }
}

/// A JSON key that matches case-insensitively: Consul clients send `Name`, `name` or `NAME`.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = "\(intValue)"
        self.intValue = intValue
    }
}

/// A keyed container looked up without regard to case.
struct CaseInsensitiveContainer {
    let container: KeyedDecodingContainer<AnyKey>
    private let keys: [String: AnyKey]

    init(_ decoder: any Decoder) throws {
        container = try decoder.container(keyedBy: AnyKey.self)
        keys = Dictionary(container.allKeys.map { ($0.stringValue.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
    }

    func decode<T: Decodable>(_ type: T.Type, _ name: String) throws -> T? {
        guard let key = keys[name.lowercased()], try !container.decodeNil(forKey: key) else { return nil }
        return try container.decode(T.self, forKey: key)
    }

    func contains(_ name: String) -> Bool { keys[name.lowercased()] != nil }
}
