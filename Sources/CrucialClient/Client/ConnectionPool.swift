import Synchronization
internal import CrucialTransport
internal import NIOCore

/// A client's connections: a few to "any server" (a server on its own, or a cluster's first
/// contact) and as many to each cluster member, opened on first use and again once closed.
/// Callers arriving while one is being opened wait for that one instead of opening their own.
///
/// Slot `i` of a pool lives on event loop `i % loops.count`. A call made on one of those
/// loops (a task whose executor is the loop: ``CrucialClient/taskExecutor``) takes a
/// connection of its own loop, so that it reaches the socket and gets its answer without
/// a thread switch; other calls are spread over the slots round-robin.
final class ConnectionPool: Sendable {
    private enum Slot {
        case empty
        case connecting(Task<any FrameConnection, any Error>)
        case connected(any FrameConnection)
    }

    private let size: Int
    /// The loops connections are opened on (none: wherever `open` puts them).
    private let loops: [any EventLoop]
    private let anyServer: [LockedBox<Slot>]
    private let members = Mutex<[String: [LockedBox<Slot>]]>([:])
    private let next = Atomic<Int>(0)

    init(size: Int, loops: [any EventLoop] = []) {
        self.size = max(1, size)
        self.loops = loops
        self.anyServer = (0..<max(1, size)).map { _ in LockedBox(Slot.empty) }
    }

    /// The slot a call takes now (see ``loopAffineSlot(turn:count:loops:)``).
    private func slotIndex() -> Int {
        loopAffineSlot(turn: next.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max, count: size, loops: loops)
    }

    private func slot(for address: String?, _ index: Int) -> LockedBox<Slot> {
        guard let address else { return anyServer[index] }
        return members.withLock { pools in
            if let pool = pools[address] { return pool[index] }
            let pool = (0..<size).map { _ in LockedBox(Slot.empty) }
            pools[address] = pool
            return pool[index]
        }
    }

    /// A connection to `address` (to any server when nil), opened with `open` if need be,
    /// on the loop it is given (nil when the pool has none).
    func connection(
        to address: String?, opening open: @escaping @Sendable (_ loop: (any EventLoop)?) async throws -> any FrameConnection
    ) async throws -> any FrameConnection {
        enum Found {
            case ready(any FrameConnection)
            case pending(Task<any FrameConnection, any Error>)
        }
        let index = slotIndex()
        let loop = loops.isEmpty ? nil : loops[index % loops.count]
        let slot = slot(for: address, index)
        let found: Found = slot.withLock { state in
            switch state {
            case .connected(let c) where c.isActive:
                return .ready(c)
            case .connecting(let t):
                return .pending(t)
            default:
                let t = Task { try await open(loop) }
                state = .connecting(t)
                return .pending(t)
            }
        }
        let task: Task<any FrameConnection, any Error>
        switch found {
        case .ready(let c): return c
        case .pending(let t): task = t
        }
        do {
            let c = try await task.value
            slot.withLock { state in
                if case .connecting = state { state = .connected(c) }
            }
            return c
        } catch {
            slot.withLock { state in
                if case .connecting = state { state = .empty }
            }
            throw error
        }
    }

    /// An open connection to `address` (any server when nil) if there is one now, without
    /// waiting: for work that must not depend on Swift's cooperative pool (keep-alives).
    func openConnection(to address: String?) -> (any FrameConnection)? {
        let pool = address.map { a in members.withLock { $0[a] } ?? [] } ?? anyServer
        for slot in pool {
            let found: (any FrameConnection)? = slot.withLock { state in
                if case .connected(let c) = state, c.isActive { return c }
                return nil
            }
            if let found { return found }
        }
        return nil
    }

    /// Closes every connection; the pool opens new ones when used again.
    func closeAll() {
        for slot in anyServer + members.withLock({ $0.values.flatMap { $0 } }) {
            let old = slot.withLock { state -> Slot in
                defer { state = .empty }
                return state
            }
            switch old {
            case .connected(let c): c.close()
            case .connecting(let t): Task { try? await t.value.close() }
            case .empty: break
            }
        }
    }
}
