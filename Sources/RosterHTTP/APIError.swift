import Foundation
import Hummingbird
import RosterCore
import RosterNode

/// An error answered to a client as `{"error": {"field": ..., "message": ...}}`.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var field: String
    public var message: String

    public init(_ status: HTTPResponse.Status, field: String, message: String) {
        self.status = status
        self.field = field
        self.message = message
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try JSONEncoder().encode(ErrorBody(error: .init(field: field, message: message)))
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Maps anything a handler may throw to what the client should see. Unknown errors become
    /// a 500 that names the error, never a crash.
    static func from(_ error: any Error) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as ValidationError:
            return APIError(.badRequest, field: error.field, message: error.message)
        case let error as RegistryError:
            switch error {
            case .invalid(let v): return APIError(.badRequest, field: v.field, message: v.message)
            case .notFound(let field, let message): return APIError(.notFound, field: field, message: message)
            case .conflict(let field, let message): return APIError(.conflict, field: field, message: message)
            }
        case let error as DecodingError:
            return fromDecoding(error)
        case let error as WriteAheadLog.Failure:
            return APIError(.serviceUnavailable, field: "storage", message: "\(error); writes are refused until the node is restarted")
        default:
            return APIError(.internalServerError, field: "server", message: "\(error)")
        }
    }

    /// Turns a decoding failure into the field it happened at and what was expected there.
    static func fromDecoding(_ error: DecodingError) -> APIError {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: ["."])
        }
        switch error {
        case .typeMismatch(let type, let context):
            return APIError(.badRequest, field: fieldOrBody(path(context.codingPath)), message: "expected \(describe(type))")
        case .valueNotFound(let type, let context):
            return APIError(.badRequest, field: fieldOrBody(path(context.codingPath)), message: "expected \(describe(type)), got null")
        case .keyNotFound(let key, let context):
            return APIError(.badRequest, field: path(context.codingPath + [key]), message: "is required")
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            if field.isEmpty {
                return APIError(.badRequest, field: "body", message: "is not valid JSON")
            }
            return APIError(.badRequest, field: field, message: context.debugDescription)
        @unknown default:
            return APIError(.badRequest, field: "body", message: "could not be decoded")
        }
    }

    /// A problem with the top-level value (an array or null instead of an object) is the body's.
    private static func fieldOrBody(_ field: String) -> String { field.isEmpty ? "body" : field }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int64.Type, is Double.Type, is UInt64.Type: "a number"
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        default: "\(type)".hasPrefix("Array") ? "a list" : "\(type)".hasPrefix("Dictionary") ? "an object" : "\(type)"
        }
    }
}

/// The JSON shape of every error answer.
struct ErrorBody: Codable {
    struct Detail: Codable {
        var field: String
        var message: String
    }
    var error: Detail
}

/// Converts every thrown error into an `APIError` response, so clients always get the JSON shape.
struct ErrorShapingMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            throw APIError(.notFound, field: "path", message: "no route for \(request.method) \(request.uri.path)")
        } catch let error as HTTPError {
            throw APIError(error.status, field: "request", message: error.body ?? error.status.reasonPhrase)
        } catch {
            throw APIError.from(error)
        }
    }
}
