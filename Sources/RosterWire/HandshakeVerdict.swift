/// Whether to keep a peer connection after reading the peer's ``Handshake``.
public enum HandshakeVerdict: Hashable, Sendable {
    /// The peer may join the conversation.
    case accept
    /// Close the connection; log the rejection's description, which says what was wrong.
    case reject(HandshakeRejection)

    /// The human-readable reason for a rejection, or `nil` when accepted.
    public var reason: String? {
        switch self {
        case .accept: return nil
        case .reject(let rejection): return rejection.description
        }
    }
}

/// Why a peer's handshake was refused. Each case carries what an operator needs to fix it.
public enum HandshakeRejection: Hashable, Sendable, CustomStringConvertible {
    /// The peer sent an empty node name, so it cannot be told apart from other members.
    case emptyNodeName(advertise: String)
    /// The peer belongs to another cluster: joining would merge two registries.
    case clusterMismatch(peer: String, peerCluster: String, localCluster: String)
    /// The peer speaks a protocol version this build cannot.
    case unsupportedProtocolVersion(peer: String, version: UInt8, supported: ClosedRange<UInt8>)
    /// The peer claims this node's own name: usually this node dialled itself.
    case sameNodeName(String)

    public var description: String {
        switch self {
        case .emptyNodeName(let advertise):
            return "peer at \(quoted(advertise)) sent an empty node name; every node needs a unique name"
        case .clusterMismatch(let peer, let peerCluster, let localCluster):
            return
                "peer \(printable(peer)) is in cluster \(quoted(peerCluster)), this node is in \(quoted(localCluster))"
        case .unsupportedProtocolVersion(let peer, let version, let supported):
            let range =
                supported.lowerBound == supported.upperBound
                ? "version \(supported.lowerBound)" : "versions \(supported.lowerBound)...\(supported.upperBound)"
            return "peer \(printable(peer)) speaks protocol version \(version), this node speaks \(range)"
        case .sameNodeName(let name):
            return "peer has this node's own name \(quoted(name)); this node probably dialled itself "
                + "(is its own address in the seed list?) or two nodes share a name"
        }
    }
}

// MARK: - Validation

extension Handshake {
    /// Decides whether to accept a peer, from its handshake alone. Pure, so every rule can be
    /// tested without a connection.
    ///
    /// - Parameters:
    ///   - localNodeName: this node's name; a peer with the same name is refused. Pass `nil` to skip.
    ///   - supportedVersions: the protocol versions this node accepts.
    public static func validate(
        remote: Handshake,
        localClusterID: String,
        localNodeName: String? = nil,
        supportedVersions: ClosedRange<UInt8> = Handshake.supportedProtocolVersions
    ) -> HandshakeVerdict {
        guard !remote.nodeName.isEmpty else {
            return .reject(.emptyNodeName(advertise: remote.advertise))
        }
        guard remote.clusterID == localClusterID else {
            return .reject(
                .clusterMismatch(peer: remote.nodeName, peerCluster: remote.clusterID, localCluster: localClusterID)
            )
        }
        guard supportedVersions.contains(remote.protocolVersion) else {
            return .reject(
                .unsupportedProtocolVersion(
                    peer: remote.nodeName,
                    version: remote.protocolVersion,
                    supported: supportedVersions
                )
            )
        }
        if let localNodeName, remote.nodeName == localNodeName {
            return .reject(.sameNodeName(localNodeName))
        }
        return .accept
    }
}

// MARK: - Printing peer-supplied strings

/// Peer-supplied text goes into logs; escape control characters so it cannot forge log lines.
private func printable(_ text: String) -> String {
    var result = ""
    for scalar in text.unicodeScalars {
        if scalar.properties.generalCategory == .control || scalar == "'" {
            result += scalar.escaped(asASCII: false)
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    return result
}

private func quoted(_ text: String) -> String { "'\(printable(text))'" }
