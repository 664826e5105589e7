import CrucialTestFunctions

/// A linearizability checker for recorded histories, after Wing & Gong's search with
/// Lowe's memoisation (as Porcupine does it): find an order of the operations that
/// respects real time (an operation that returned before another was called comes
/// first) and that a sequential model accepts.
///
/// Linearizability is local, so a history over many objects is checked object by
/// object.
struct History<Input: Sendable, Output: Sendable>: Sendable {
    struct Operation: Sendable {
        var object: String
        var input: Input
        /// nil when the call failed or never returned: it may or may not have taken effect.
        var output: Output?
        var call: UInt64
        /// `UInt64.max` for a call that never returned.
        var response: UInt64
    }

    var operations: [Operation] = []
}

/// A sequential specification: from a state, does `input` answered with `output`
/// (nil: unknown) make sense, and which state follows.
struct Model<State: Hashable, Input, Output> {
    var initial: State
    var step: (State, Input, Output?) -> State?
}

enum Linearizability {
    /// The objects whose operations admit no linearization (empty: the history is linearizable).
    static func violations<S: Hashable, I, O>(_ history: History<I, O>, _ model: Model<S, I, O>) -> [String] {
        Dictionary(grouping: history.operations, by: \.object)
            .filter { !check($0.value, model) }
            .map(\.key)
            .sorted()
    }

    /// Wing & Gong's depth-first search over a doubly linked list of call and return
    /// events; (linearized set, state) pairs already explored are not explored again.
    static func check<S: Hashable, I, O>(_ ops: [History<I, O>.Operation], _ model: Model<S, I, O>) -> Bool {
        // Events: 2i = call of i, 2i+1 = return of i; by time, calls before returns at a tie.
        var events = ops.indices.flatMap { [(ops[$0].call, 0, 2 * $0), (ops[$0].response, 1, 2 * $0 + 1)] }
        events.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        let n = events.count
        // A list with a head sentinel at index n.
        var next = [Int](repeating: -1, count: n + 1), prev = [Int](repeating: -1, count: n + 1)
        var position = [Int](repeating: 0, count: n)
        var last = n
        for (i, e) in events.enumerated() {
            position[e.2] = i
            next[last] = i
            prev[i] = last
            last = i
        }
        func lift(_ op: Int) {
            for p in [position[2 * op], position[2 * op + 1]] {
                next[prev[p]] = next[p]
                if next[p] >= 0 { prev[next[p]] = prev[p] }
            }
        }
        func unlift(_ op: Int) {
            for p in [position[2 * op + 1], position[2 * op]] {
                next[prev[p]] = p
                if next[p] >= 0 { prev[next[p]] = p }
            }
        }
        var linearized = [UInt64](repeating: 0, count: (ops.count + 63) / 64)
        var seen = Set<Explored<S>>()
        var stack: [(op: Int, state: S)] = []
        var state = model.initial
        var entry = next[n]
        while next[n] >= 0 {
            if entry < 0 { return false }  // cannot happen: a return always stops the scan
            let event = events[entry].2
            let op = event / 2
            if event % 2 == 0 {
                if let after = model.step(state, ops[op].input, ops[op].output) {
                    var marked = linearized
                    marked[op / 64] |= 1 << UInt64(op % 64)
                    if seen.insert(Explored(linearized: marked, state: after)).inserted {
                        stack.append((op, state))
                        state = after
                        linearized = marked
                        lift(op)
                        entry = next[n]
                        continue
                    }
                }
                entry = next[entry]
            } else {
                // The earliest pending return: its operation must be linearized before here; undo.
                guard let (undone, before) = stack.popLast() else { return false }
                state = before
                linearized[undone / 64] &= ~(1 << UInt64(undone % 64))
                unlift(undone)
                entry = next[position[2 * undone]]
            }
        }
        return true
    }
}

/// A point of the search: which operations are linearized, and the state they lead to.
private struct Explored<S: Hashable>: Hashable {
    var linearized: [UInt64]
    var state: S
}

/// Calls on registers and counters (`AtomicLong`s used both ways).
extension Model where State == Int64, Input == RegisterInput, Output == Int64 {
    /// An integer register that starts at 0: reads see the last write, writes answer
    /// nothing (0), increments answer the new value.
    static var register: Model {
        Model(initial: 0) { state, input, output in
            switch input {
            case .read: output == nil || output == state ? state : nil
            case .write(let v): v
            case .increment: output == nil || output == state + 1 ? state + 1 : nil
            }
        }
    }
}
