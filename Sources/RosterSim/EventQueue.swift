/// A priority queue of timed events on one virtual clock.
///
/// Ties are broken by insertion order, never by hashing, so that a run is a pure function of
/// its seed: two events due at the same millisecond always run in the order they were scheduled.
struct EventQueue<Event> {
    private struct Entry {
        var at: Int64
        var order: UInt64
        var event: Event
        func precedes(_ other: Entry) -> Bool { (at, order) < (other.at, other.order) }
    }

    private var heap: [Entry] = []
    private var nextOrder: UInt64 = 0

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }
    var nextTime: Int64? { heap.first?.at }

    mutating func schedule(_ event: Event, at time: Int64) {
        nextOrder += 1
        heap.append(Entry(at: time, order: nextOrder, event: event))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (at: Int64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var first = parent
            if left < heap.count && heap[left].precedes(heap[first]) { first = left }
            if right < heap.count && heap[right].precedes(heap[first]) { first = right }
            guard first != parent else { break }
            heap.swapAt(parent, first)
            parent = first
        }
        return (top.at, top.event)
    }
}
