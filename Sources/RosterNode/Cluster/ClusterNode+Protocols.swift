import Logging
import NIOCore
import RosterCore
import RosterWire

/// Carrying out what the protocols decide.
extension ClusterNode {
    func handle(_ event: ClusterInbox.Event) async {
        let now = clock.monotonicMillis()
        switch event {
        case .received(let payload, let remote):
            let envelope: ClusterEnvelope
            do {
                envelope = try ClusterEnvelope.decode(payload)
            } catch {
                logger.warning("undecodable message from peer \(remote.nodeName): \(error)")
                return
            }
            switch envelope {
            case .membership(let message):
                perform(membership.receive(message, from: remote.advertise, now: now))
            case .replication(let message):
                metrics.count(message)
                if case .digest = message {
                    let (directives, inSync) = await registry.handleDigest(message, from: remote.nodeName, replicator: replicator)
                    if inSync && !caughtUp {
                        caughtUp = true
                        logger.notice("caught up: this node's state matches peer \(remote.nodeName)'s")
                    }
                    await perform(directives)
                    return
                }
                let directives = await registry.handleReplication(message, from: remote.nodeName, replicator: replicator)
                await perform(directives)
            }
        case .disconnected(let address, _):
            if membership.knowsMember(atAddress: address) {
                perform(membership.connectionFailed(to: address, now: now))
            }
        case .connected(let remote, _):
            logger.debug("peer connected", metadata: ["peer": "\(remote.nodeName)", "advertise": "\(remote.advertise)"])
        case .refused(let address, let reason):
            metrics.refusedPeers.increment()
            logger.debug("peer refused", metadata: ["address": "\(address)", "reason": "\(reason)"])
        }
    }

    func tickMembership() async {
        perform(membership.tick(now: clock.monotonicMillis()))
        metrics.record(members: membership.members, transport: transport.statistics)
        await publishView()
        // A node that has just started syncs with the first live peer it learns of, rather than
        // waiting for the first anti-entropy round: a fresh node fills up sooner.
        if !caughtUp && !firstSyncStarted && !livePeers.isEmpty {
            firstSyncStarted = true
            await antiEntropy()
        }
    }

    /// Tells the registry who owns which checks, whenever that may have changed. The view is
    /// settled once this node has joined and caught up, or has waited `settleTimeout` for that
    /// (seeds that never answer must not stop a node from checking its own services): before,
    /// it runs no checks, and unknown nodes are not yet counted as gone.
    func publishView() async {
        let waited = clock.monotonicMillis() - startedAt >= configuration.settleTimeoutMillis
        let view = ClusterView(
            me: configuration.nodeName, members: membership.members,
            settled: (membership.hasJoined && caughtUp) || waited, doubting: membership.localHealthMultiplier > 0)
        guard view != publishedView else { return }
        publishedView = view
        await registry.updateView(view)
    }

    func antiEntropy() async {
        let peers = livePeers
        guard !peers.isEmpty else {
            // Alone (a single node, or every peer gone): nothing to catch up with.
            if membership.memberCount == 1 { caughtUp = true }
            return
        }
        metrics.antiEntropyRounds.increment()
        await perform(await registry.startAntiEntropy(replicator: replicator, peers: peers, seed: rng.next()))
    }

    func flushRumors() async {
        let records = outbox.drain()
        guard !records.isEmpty else { return }
        await perform(replicator.rumor(records, peers: livePeers, using: &rng))
    }

    func flushRenewals() async {
        await perform(replicator.broadcast(renewals.drain(), peers: livePeers))
    }

    // MARK: - Directives

    func perform(_ directives: [MembershipDirective]) {
        for directive in directives {
            switch directive {
            case .send(let message, let address):
                _ = transport.send(ClusterEnvelope.membership(message).encoded(), to: address)
            case .stateChanged(let member, let previous):
                membershipVersion.increment()
                guard member.identity.name != configuration.nodeName else { continue }
                let level: Logger.Level = member.state == .failed ? .warning : .info
                logger.log(
                    level: level, "member \(member.identity.name) is \(member.state.rawValue)",
                    metadata: [
                        "was": "\(previous?.rawValue ?? "unknown")", "address": "\(member.identity.address)",
                        "generation": "\(member.identity.generation)", "incarnation": "\(member.incarnation)",
                    ])
            }
        }
    }

    func perform(_ directives: [ReplicationDirective]) async {
        for directive in directives {
            switch directive {
            case .send(let message, let node):
                guard let address = membership.member(named: node)?.identity.address else { continue }
                _ = transport.send(ClusterEnvelope.replication(message).encoded(), to: address)
            case .renew(let renewals):
                await registry.applyRenewals(renewals)
            case .apply(let records, let from, let hops):
                let changed = await registry.applyRemote(records)
                if let hops, !changed.isEmpty {
                    await perform(replicator.forward(changed, hops: hops, except: from, peers: livePeers, using: &rng))
                }
            }
        }
    }
}
