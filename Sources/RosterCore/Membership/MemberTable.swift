// MARK: - Member table

/// Every other member this node knows, with the indexes the protocol reads on every message
/// and every tick: live names in name order, suspect and departed names, and names by address.
///
/// Membership changes are rare and reads are constant, so the indexes are kept current on
/// write. Computing them per read (filter and sort every record) made each message cost
/// O(n log n): at 1,000 members that was most of a node's work, and it kept the simulator
/// from running a 1,000-node cluster at all.
///
/// Name order matters: random picks from these lists then depend only on the seed, never on
/// dictionary order, so a simulated run replays exactly.
struct MemberTable: Sendable {
    private(set) var byName: [NodeID: MemberRecord] = [:]
    /// Alive and suspect members, by name.
    private(set) var liveNames: [NodeID] = []
    /// Suspect members, by name: the ones with a suspicion deadline to watch.
    private(set) var suspectNames: [NodeID] = []
    /// Failed and left members, by name: kept for retention, then forgotten.
    private(set) var departedNames: [NodeID] = []
    /// Usually one name an address; two when a node came back under a new name at the same
    /// address before the old name was forgotten.
    private var namesByAddress: [String: [NodeID]] = [:]

    var count: Int { byName.count }
    var values: Dictionary<NodeID, MemberRecord>.Values { byName.values }

    subscript(name: NodeID) -> MemberRecord? {
        get { byName[name] }
        set {
            let old = byName[name]
            byName[name] = newValue
            reindex(name, from: old?.member, to: newValue?.member)
        }
    }

    /// The names listening at `address`, in name order.
    func names(atAddress address: String) -> [NodeID] { namesByAddress[address] ?? [] }

    private mutating func reindex(_ name: NodeID, from old: Member?, to new: Member?) {
        Self.file(name, in: &liveNames, was: old?.isLive == true, is: new?.isLive == true)
        Self.file(name, in: &suspectNames, was: old?.state == .suspect, is: new?.state == .suspect)
        Self.file(name, in: &departedNames, was: old?.isLive == false, is: new?.isLive == false)
        let (oldAddress, newAddress) = (old?.identity.address, new?.identity.address)
        if oldAddress != newAddress {
            if let oldAddress {
                Self.remove(name, from: &namesByAddress[oldAddress, default: []])
                if namesByAddress[oldAddress]?.isEmpty == true { namesByAddress[oldAddress] = nil }
            }
            if let newAddress { Self.insert(name, into: &namesByAddress[newAddress, default: []]) }
        }
    }

    // MARK: Sorted name lists

    /// Adds `name` to, or removes it from, one sorted list as its membership of it changes.
    private static func file(_ name: NodeID, in names: inout [NodeID], was: Bool, is now: Bool) {
        guard was != now else { return }
        if now { insert(name, into: &names) } else { remove(name, from: &names) }
    }

    /// Where `name` is or would go in the sorted `names`.
    private static func position(of name: NodeID, in names: [NodeID]) -> Int {
        var low = 0, high = names.count
        while low < high {
            let mid = (low + high) / 2
            if names[mid] < name { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private static func insert(_ name: NodeID, into names: inout [NodeID]) {
        let at = position(of: name, in: names)
        if at == names.count || names[at] != name { names.insert(name, at: at) }
    }

    private static func remove(_ name: NodeID, from names: inout [NodeID]) {
        let at = position(of: name, in: names)
        if at < names.count && names[at] == name { names.remove(at: at) }
    }
}
