import Foundation
import NIOCore
import NIOPosix

@testable import RosterDNS

// MARK: - Server

/// Runs `body` against a real server on an ephemeral loopback port, and always shuts it down.
func withDNSServer<T>(
    _ data: InMemoryDataSource, ttl: Int = 5, _ body: (_ port: Int) async throws -> T
) async throws -> T {
    let server = try DNSServer(
        host: "127.0.0.1", port: 0, ttl: ttl, dataSource: data, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
    let (udpPort, tcpPort) = try await server.start()
    guard udpPort == tcpPort else { throw TestFailure("UDP on \(udpPort) but TCP on \(tcpPort)") }
    do {
        let result = try await body(udpPort)
        await server.shutdown()
        return result
    } catch {
        await server.shutdown()
        throw error
    }
}

/// Fails instead of hanging if the server never answers.
func withDeadline<T: Sendable>(_ seconds: Int = 5, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else {
            throw TestFailure("no answer within \(seconds)s")
        }
        return result
    }
}

// MARK: - NIO clients

typealias DatagramChannel = NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>

/// Sends each request from one UDP socket and returns the replies in the order they arrive.
func udpExchange(_ requests: [[UInt8]], expecting count: Int, port: Int) async throws -> [[UInt8]] {
    let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0) { channel in
            channel.eventLoop.makeCompletedFuture { try DatagramChannel(wrappingChannelSynchronously: channel) }
        }
    let remote = try SocketAddress(ipAddress: "127.0.0.1", port: port)
    return try await withDeadline {
        try await channel.executeThenClose { inbound, outbound in
            for request in requests {
                try await outbound.write(AddressedEnvelope(remoteAddress: remote, data: ByteBuffer(bytes: request)))
            }
            var replies: [[UInt8]] = []
            for try await envelope in inbound {
                replies.append(Array(envelope.data.readableBytesView))
                if replies.count == count { break }
            }
            return replies
        }
    }
}

/// Writes `chunks` to one TCP connection as they are (so a test can split or join frames) and
/// reads `count` length-prefixed replies back.
func tcpExchange(_ chunks: [[UInt8]], expecting count: Int, port: Int) async throws -> [[UInt8]] {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    return try await withDeadline {
        try await channel.executeThenClose { inbound, outbound in
            for chunk in chunks {
                try await outbound.write(ByteBuffer(bytes: chunk))
            }
            var pending = ByteBuffer()
            var replies: [[UInt8]] = []
            for try await var buffer in inbound {
                pending.writeBuffer(&buffer)
                while let length = pending.getInteger(at: pending.readerIndex, as: UInt16.self),
                    pending.readableBytes >= 2 + Int(length)
                {
                    pending.moveReaderIndex(forwardBy: 2)
                    replies.append(pending.readBytes(length: Int(length)) ?? [])
                }
                if replies.count >= count { break }
            }
            return replies
        }
    }
}

func framed(_ message: [UInt8]) -> [UInt8] {
    [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
}

// MARK: - dig

let digPath = "/usr/bin/dig"
let digInstalled = FileManager.default.isExecutableFile(atPath: digPath)

/// What `dig` printed, in parts: the status, the header flags and each section's records.
struct DigOutput {
    var raw: String
    var status = ""
    var flags: Set<String> = []
    var sections: [String: [[String]]] = [:]

    init(_ raw: String) {
        self.raw = raw
        var section: String?
        for line in raw.split(separator: "\n", omittingEmptySubsequences: false) {
            if let range = line.range(of: "status: ") {
                status = String(line[range.upperBound...].prefix { $0 != "," })
            } else if line.hasPrefix(";; flags: ") {
                let text = line.dropFirst(";; flags: ".count).prefix { $0 != ";" }
                flags = Set(text.split(separator: " ").map(String.init))
            } else if line.hasPrefix(";; "), line.hasSuffix(" SECTION:") {
                section = String(line.dropFirst(3).dropLast(" SECTION:".count))
            } else if line.isEmpty {
                section = nil
            } else if let current = section, !line.hasPrefix(";") {
                sections[current, default: []].append(line.split(whereSeparator: \.isWhitespace).map(String.init))
            }
        }
    }

    /// The data fields (after name, TTL, class and type) of the records of one section.
    func data(_ section: String, type: String) -> [String] {
        (sections[section] ?? []).filter { $0.count > 4 && $0[3] == type }.map { $0[4...].joined(separator: " ") }
    }
}

/// Runs dig without blocking a concurrency thread: the server answers on those threads too.
/// One try of up to 5 s: an answer is a matter of milliseconds, but CPU-bound tests in other
/// suites can hold the pool's threads (two in CI) for a few seconds at a time.
func dig(_ arguments: [String], port: Int) async throws -> DigOutput {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: digPath)
    process.arguments = ["@127.0.0.1", "-p", String(port), "+tries=1", "+time=5"] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let collected = OutputBuffer()
    pipe.fileHandleForReading.readabilityHandler = { handle in collected.append(handle.availableData) }
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        process.terminationHandler = { _ in continuation.resume() }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    pipe.fileHandleForReading.readabilityHandler = nil
    collected.append(pipe.fileHandleForReading.readDataToEndOfFile())
    return DigOutput(collected.text)
}

final class OutputBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ chunk: Data) { lock.withLock { data.append(chunk) } }
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}
