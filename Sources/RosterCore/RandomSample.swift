extension Array {
    /// Up to `count` distinct elements in random order, skipping those `excluded` rejects;
    /// every such subset and order is equally likely.
    ///
    /// A sparse Fisher-Yates shuffle: it draws only as many random numbers as it needs and
    /// leaves `self` alone, where `shuffled().prefix(count)` shuffles every element. Gossip
    /// picks three peers out of the whole membership for every message it forwards, so that
    /// difference is the cost of a large cluster.
    public func randomSample(
        _ count: Int, excluding excluded: (Element) -> Bool = { _ in false }, using rng: inout some RandomNumberGenerator
    ) -> [Element] {
        var picked: [Element] = []
        guard count > 0 else { return picked }
        picked.reserveCapacity(Swift.min(count, self.count))
        // Positions swapped so far: position → the index of the element now there.
        var moved: [Int: Int] = [:]
        var next = 0
        while picked.count < count && next < self.count {
            let chosen = Int.random(in: next..<self.count, using: &rng)
            let element = moved[chosen] ?? chosen
            moved[chosen] = moved[next] ?? next
            next += 1
            if !excluded(self[element]) { picked.append(self[element]) }
        }
        return picked
    }
}
