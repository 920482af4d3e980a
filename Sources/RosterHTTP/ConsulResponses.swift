import RosterCore

/// Response shapes of Consul's API, with Consul's PascalCase keys.

struct ConsulAgentService: Encodable {
    var ID: String
    var Service: String
    var Tags: [String]
    var Meta: [String: String]
    var Port: Int
    var Address: String
    var Weights: ConsulWeights
    var EnableTagOverride = false
    var Datacenter: String

    init(_ i: ServiceInstance, datacenter: String) {
        ID = i.instanceID
        Service = i.serviceName
        Tags = i.tags
        Meta = i.metadata
        Port = i.port
        Address = i.host
        Weights = ConsulWeights(passing: i.weight, warning: 1)
        Datacenter = datacenter
    }
}

struct ConsulCheck: Encodable {
    var Node: String
    var CheckID: String
    var Name: String
    var Status: String
    var Notes: String
    var Output: String
    var ServiceID: String
    var ServiceName: String
    var ServiceTags: [String]
    var `Type`: String
    var Interval: String
    var Timeout: String
    var CreateIndex: UInt64
    var ModifyIndex: UInt64

    init(_ c: HealthCheck, of i: ServiceInstance, index: UInt64) {
        Node = i.node
        CheckID = c.checkID
        Name = c.name
        Status = c.status.rawValue
        Notes = c.notes
        Output = c.output
        ServiceID = i.instanceID
        ServiceName = i.serviceName
        ServiceTags = i.tags
        Type = c.kind.rawValue
        Interval = c.interval?.description ?? ""
        Timeout = c.timeout?.description ?? ""
        CreateIndex = index
        ModifyIndex = index
    }

    /// Consul's node-level `serfHealth` check, which its clients expect in health answers.
    init(nodeHealthOf node: String, alive: Bool, index: UInt64) {
        Node = node
        CheckID = "serfHealth"
        Name = "Serf Health Status"
        Status = alive ? "passing" : "critical"
        Notes = ""
        Output = alive ? "Agent alive and reachable" : "Agent not live or unreachable"
        ServiceID = ""
        ServiceName = ""
        ServiceTags = []
        Type = ""
        Interval = ""
        Timeout = ""
        CreateIndex = index
        ModifyIndex = index
    }
}

struct ConsulNode: Encodable {
    var ID: String
    var Node: String
    var Address: String
    var Datacenter: String
    var TaggedAddresses: [String: String]
    var Meta: [String: String]
    var CreateIndex: UInt64 = 1
    var ModifyIndex: UInt64 = 1

    init(name: String, address: String, datacenter: String) {
        ID = ""
        Node = name
        Address = address
        Datacenter = datacenter
        TaggedAddresses = ["lan": address, "wan": address]
        Meta = [:]
    }
}

struct ConsulHealthEntry: Encodable {
    var Node: ConsulNode
    var Service: ConsulAgentService
    var Checks: [ConsulCheck]
}

struct ConsulCatalogService: Encodable {
    var ID: String = ""
    var Node: String
    var Address: String
    var Datacenter: String
    var TaggedAddresses: [String: String]
    var NodeMeta: [String: String] = [:]
    var ServiceID: String
    var ServiceName: String
    var ServiceTags: [String]
    var ServiceAddress: String
    var ServicePort: Int
    var ServiceMeta: [String: String]
    var ServiceWeights: ConsulWeights
    var ServiceEnableTagOverride = false
    var CreateIndex: UInt64
    var ModifyIndex: UInt64
}

struct ConsulMember: Encodable {
    var Name: String
    var Addr: String
    var Port: Int
    var Tags: [String: String]
    var Status: Int
    var ProtocolMin = 1
    var ProtocolMax = 5
    var ProtocolCur = 2
    var DelegateMin = 2
    var DelegateMax = 5
    var DelegateCur = 4

    init(_ m: MemberView, datacenter: String) {
        Name = m.name
        Addr = m.address
        Port = m.port
        Tags = ["dc": datacenter, "role": "node", "state": m.state.rawValue]
        Status = m.consulStatus
    }
}

struct ConsulSelf: Encodable {
    struct Config: Encodable {
        var Datacenter: String
        var NodeName: String
        var NodeID: String
        var Server: Bool
        var Revision: String
        var Version: String
    }
    var Config: Config
    var Member: ConsulMember
    var Meta: [String: String]
}
