import Logging
import NIOCore

/// One address this node sends to: a bounded queue, and the single connection that drains it.
///
/// The queue is filled from any thread by ``send(_:)`` and drained on the peer's event loop.
/// The connection state (``Phase``) changes only on that event loop, but lives behind the same
/// lock as the queue so that `send` can tell whether a drain or a connect needs to be kicked off.
///
/// Connections are made lazily: only while something is queued. A failed attempt (refused TCP,
/// TLS or Roster handshake, timeout) sets a not-before deadline from ``ReconnectBackoff``;
/// payloads keep queueing meanwhile, up to ``OutboundQueueLimits``.
final class OutboundPeer: Sendable {
    let address: String
    let target: PeerAddress
    let eventLoop: any EventLoop
    /// Strong: the transport holds its peers strongly too, and `shutdown()` breaks the cycle.
    private let transport: PeerTransport
    private let state = TransportLocked(State())

    private struct State {
        var queue = CircularBuffer<ByteBuffer>()
        var queuedBytes = 0
        var phase: Phase = .idle
        /// Numbers connection attempts, so that late events of an old attempt are ignored.
        var attempt: UInt64 = 0
        var consecutiveFailures = 0
        /// When the current connection passed its handshakes.
        var establishedAt: NIODeadline?
        var notBefore = NIODeadline.uptimeNanoseconds(0)
        /// A `kick` is already on its way to the event loop; `send` need not schedule another.
        var kickScheduled = false
        /// Set when the queue first overflows, cleared when it empties: one log line per episode.
        var overflowing = false
        var lastFailure: String?
    }

    private enum Phase {
        /// No connection and no attempt under way.
        case idle
        /// Backing off until the scheduled retry fires.
        case waiting(Scheduled<Void>)
        /// TCP connecting, or (with the channel) TLS and Roster handshakes under way.
        case connecting((any Channel)?)
        /// Handshakes done: the queue drains into this channel.
        case ready(any Channel)
        /// The transport shut down.
        case closed
    }

    init(address: String, target: PeerAddress, eventLoop: any EventLoop, transport: PeerTransport) {
        self.address = address
        self.target = target
        self.eventLoop = eventLoop
        self.transport = transport
    }

    private var limits: OutboundQueueLimits { self.transport.configuration.outboundQueue }
    private var logger: Logger { self.transport.logger }

    // MARK: - Queueing (any thread)

    func send(_ payload: ByteBuffer) -> PeerSendOutcome {
        let limits = self.limits
        guard payload.readableBytes <= limits.maxBytes else {
            let reason =
                "payload of \(payload.readableBytes) bytes exceeds the outbound queue bound of "
                + "\(limits.maxBytes) bytes (OutboundQueueLimits.maxBytes)"
            self.transport.reportDropped(1, address: self.address, reason: reason, level: .error)
            return .dropped(reason)
        }
        let (outcome, dropped, needsKick, firstOverflow) = self.state.withLock {
            state -> (PeerSendOutcome, Int, Bool, Bool) in
            if case .closed = state.phase { return (.dropped("the transport is shut down"), 1, false, false) }
            state.queue.append(payload)
            state.queuedBytes += payload.readableBytes
            var dropped = 0
            while state.queue.count > limits.maxFrames || state.queuedBytes > limits.maxBytes {
                state.queuedBytes -= state.queue.removeFirst().readableBytes
                dropped += 1
            }
            let firstOverflow = dropped > 0 && !state.overflowing
            if dropped > 0 { state.overflowing = true }
            var needsKick = false
            switch state.phase {
            case .idle, .ready:
                needsKick = !state.kickScheduled
                state.kickScheduled = true
            case .waiting, .connecting, .closed:
                break
            }
            return (dropped > 0 ? .queuedDroppingOldest(dropped) : .queued, dropped, needsKick, firstOverflow)
        }
        if needsKick {
            self.eventLoop.execute { self.kick() }
        }
        if dropped > 0 {
            let reason: String
            if case .dropped(let why) = outcome {
                reason = why
            } else {
                reason =
                    "outbound queue full (\(limits.maxFrames) payloads or \(limits.maxBytes) bytes); dropping the "
                    + "oldest while the peer is unreachable or slow"
            }
            self.transport.reportDropped(
                dropped, address: self.address, reason: reason, level: firstOverflow ? .warning : .debug)
        }
        return outcome
    }

    /// Payloads and bytes waiting for this peer.
    var queueDepth: (frames: Int, bytes: Int) {
        self.state.withLock { ($0.queue.count, $0.queuedBytes) }
    }

    // MARK: - Connection lifecycle (event loop)

    private enum KickAction {
        case none
        case connect(UInt64)
        case drain(any Channel)
    }

    /// Moves things along: starts a connection if one is needed and allowed, or drains the queue.
    private func kick() {
        self.eventLoop.preconditionInEventLoop()
        let action = self.state.withLock { state -> KickAction in
            state.kickScheduled = false
            switch state.phase {
            case .idle:
                guard !state.queue.isEmpty else { return .none }
                if NIODeadline.now() < state.notBefore {
                    let retry = self.eventLoop.scheduleTask(deadline: state.notBefore) { self.retryDue() }
                    state.phase = .waiting(retry)
                    return .none
                }
                state.attempt += 1
                state.phase = .connecting(nil)
                return .connect(state.attempt)
            case .ready(let channel):
                return .drain(channel)
            case .waiting, .connecting, .closed:
                return .none
            }
        }
        switch action {
        case .none:
            break
        case .connect(let attempt):
            self.connect(attempt: attempt)
        case .drain(let channel):
            self.drain(channel)
        }
    }

    private func retryDue() {
        let due = self.state.withLock { state -> Bool in
            guard case .waiting = state.phase else { return false }
            state.phase = .idle
            return true
        }
        if due { self.kick() }
    }

    private func connect(attempt: UInt64) {
        self.logger.debug("connecting to peer \(self.address) (attempt \(attempt))")
        self.transport.connect(self, attempt: attempt).whenComplete { result in
            switch result {
            case .success(let channel):
                let keep = self.state.withLock { state -> Bool in
                    guard state.attempt == attempt, case .connecting = state.phase else { return false }
                    state.phase = .connecting(channel)
                    return true
                }
                if !keep { channel.close(promise: nil) }
            case .failure(let error):
                self.connectionClosed(
                    attempt: attempt,
                    wasEstablished: false,
                    reason: PeerConnectionHandler.describe(error)
                )
            }
        }
    }

    /// Called by the connection's handler once the remote's handshake was accepted.
    func connectionEstablished(attempt: UInt64, channel: any Channel) {
        let keep = self.state.withLock { state -> Bool in
            guard state.attempt == attempt, case .connecting = state.phase else { return false }
            state.phase = .ready(channel)
            state.establishedAt = .now()
            state.lastFailure = nil
            return true
        }
        if keep {
            self.drain(channel)
        } else {
            channel.close(promise: nil)
        }
    }

    /// How long a connection must have lasted for its end not to count as a failure.
    static let stableConnection = TimeAmount.seconds(1)

    /// Called when an attempt fails or its connection ends, exactly once per attempt.
    func connectionClosed(attempt: UInt64, wasEstablished: Bool, reason: String) {
        let backoff = self.transport.configuration.reconnectBackoff
        let outcome = self.state.withLock { state -> (failures: Int, delay: TimeAmount, queued: Int)? in
            guard state.attempt == attempt else { return nil }
            switch state.phase {
            case .connecting, .ready: break
            case .idle, .waiting, .closed: return nil
            }
            // A connection that worked for a while starts over at the shortest pause. A failed
            // attempt doubles it, and so does one the peer drops right after the handshake (say,
            // because it refuses this node), so that such a peer is not redialled in a tight loop.
            let now = NIODeadline.now()
            let stable = wasEstablished && state.establishedAt.map { now - $0 >= Self.stableConnection } == true
            state.consecutiveFailures = stable ? 0 : state.consecutiveFailures + 1
            state.establishedAt = nil
            let delay = backoff.delay(
                afterFailures: max(state.consecutiveFailures, 1), random: Double.random(in: 0...1))
            state.notBefore = now + delay
            state.phase = .idle
            state.lastFailure = reason
            return (state.consecutiveFailures, delay, state.queue.count)
        }
        guard let outcome else { return }
        if !wasEstablished {
            let retry = PeerConnectionHandler.describe(outcome.delay)
            let message: Logger.Message =
                "cannot reach peer \(self.address) (attempt \(attempt)): \(reason); \(outcome.queued) payloads queued, next attempt in \(retry)"
            self.logger.log(
                level: outcome.failures == 1 ? .info : .debug, message, metadata: ["peer.address": "\(self.address)"])
        }
        self.kick()
    }

    /// Called by the handler when a full channel has room again.
    func channelBecameWritable(attempt: UInt64) {
        let channel = self.state.withLock { state -> (any Channel)? in
            guard state.attempt == attempt, case .ready(let channel) = state.phase else { return nil }
            return channel
        }
        if let channel { self.drain(channel) }
    }

    /// Bytes written between flushes, so that a long queue goes out in large TLS records and
    /// the channel's writability (which only counts flushed bytes behind NIOSSL) stays current.
    private static let flushEvery = 256 * 1024

    /// Writes queued payloads while the channel is writable. What is left waits for
    /// `channelWritabilityChanged`, so the bytes in flight stay bounded by the channel's
    /// write-buffer watermarks plus one flush batch.
    private func drain(_ channel: any Channel) {
        self.eventLoop.preconditionInEventLoop()
        var unflushed = 0
        while channel.isWritable {
            let next = self.state.withLock { state -> ByteBuffer? in
                guard case .ready(let current) = state.phase, current === channel,
                    let payload = state.queue.popFirst()
                else { return nil }
                state.queuedBytes -= payload.readableBytes
                if state.queue.isEmpty { state.overflowing = false }
                return payload
            }
            guard let payload = next else { break }
            channel.write(payload, promise: nil)
            unflushed += payload.readableBytes
            if unflushed >= Self.flushEvery {
                channel.flush()
                unflushed = 0
            }
        }
        if unflushed > 0 { channel.flush() }
    }

    // MARK: - Shutdown

    /// Stops for good: drops the queue, cancels a pending retry, closes the connection.
    func close() -> EventLoopFuture<Void> {
        let (channel, retry) = self.state.withLock { state -> ((any Channel)?, Scheduled<Void>?) in
            let phase = state.phase
            state.phase = .closed
            state.queue.removeAll()
            state.queuedBytes = 0
            switch phase {
            case .waiting(let retry): return (nil, retry)
            case .connecting(let channel): return (channel, nil)
            case .ready(let channel): return (channel, nil)
            case .idle, .closed: return (nil, nil)
            }
        }
        retry?.cancel()
        guard let channel else { return self.eventLoop.makeSucceededVoidFuture() }
        channel.close(promise: nil)
        return channel.closeFuture
    }
}
