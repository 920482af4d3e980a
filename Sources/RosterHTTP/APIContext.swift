import Hummingbird
import RosterCore
import RosterNode

/// Facts about this node that the HTTP API reports.
public struct NodeInfo: Sendable {
    public var name: String
    public var datacenter: String
    /// The host other nodes and clients reach this node at; also the default service address.
    public var address: String
    public var clusterPort: Int
    public var version: String

    public init(name: String, datacenter: String, address: String, clusterPort: Int, version: String) {
        self.name = name
        self.datacenter = datacenter
        self.address = address
        self.clusterPort = clusterPort
        self.version = version
    }
}

/// A cluster member as the API shows it. The single-node foundation reports only itself; the
/// cluster layer supplies the real list through `MembersProvider`.
public struct MemberView: Sendable, Equatable {
    public enum State: String, Sendable { case alive, suspect, failed, left }
    public var name: String
    public var address: String
    public var port: Int
    public var state: State

    public init(name: String, address: String, port: Int, state: State) {
        self.name = name
        self.address = address
        self.port = port
        self.state = state
    }

    /// Consul's member status integers: 1 alive, 2 leaving, 3 left, 4 failed. A suspect node is
    /// still alive to Consul's clients.
    public var consulStatus: Int {
        switch state {
        case .alive, .suspect: 1
        case .left: 3
        case .failed: 4
        }
    }
}

public typealias MembersProvider = @Sendable () async -> [MemberView]

/// The cluster's view of this node for `/health`: whether it has joined, and whether its state
/// has matched a peer's digest since it started (caught up).
public struct ClusterHealth: Sendable, Encodable {
    public var joined: Bool
    public var caughtUp: Bool
    public var liveMembers: Int
    public var members: Int

    public init(joined: Bool, caughtUp: Bool, liveMembers: Int, members: Int) {
        self.joined = joined
        self.caughtUp = caughtUp
        self.liveMembers = liveMembers
        self.members = members
    }

    enum CodingKeys: String, CodingKey {
        case joined, caughtUp = "caught_up", liveMembers = "live_members", members
    }
}

/// Everything a route handler needs, shared by all routes.
public struct APIContext: Sendable {
    public var registry: Registry
    public var node: NodeInfo
    public var limits: InputLimits
    public var members: MembersProvider
    public var clusterHealth: @Sendable () async -> ClusterHealth
    /// Raised whenever any member's state changes: a cheap way to know cached answers that
    /// embed member health are still current.
    public var membershipVersion: @Sendable () -> UInt64

    public init(
        registry: Registry, node: NodeInfo, limits: InputLimits = .standard, members: MembersProvider? = nil,
        clusterHealth: (@Sendable () async -> ClusterHealth)? = nil,
        membershipVersion: (@Sendable () -> UInt64)? = nil
    ) {
        self.registry = registry
        self.node = node
        self.limits = limits
        let me = MemberView(name: node.name, address: node.address, port: node.clusterPort, state: .alive)
        self.members = members ?? { [me] }
        self.clusterHealth = clusterHealth ?? { ClusterHealth(joined: true, caughtUp: true, liveMembers: 1, members: 1) }
        self.membershipVersion = membershipVersion ?? { 0 }
    }

    var validator: InstanceValidator { InstanceValidator(limits: limits) }

    /// The address of a member by name, for Consul's `Node` objects; our own if unknown.
    func address(of nodeName: String, in members: [MemberView]) -> String {
        members.first { $0.name == nodeName }?.address ?? node.address
    }
}
