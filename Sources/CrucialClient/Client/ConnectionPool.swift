import Synchronization
internal import CrucialTransport

/// A client's connections: a few to "any server" (a server on its own, or a cluster's first
/// contact) and as many to each cluster member, opened on first use and again once closed.
/// Calls are spread over a pool's connections round-robin; callers arriving while one is
/// being opened wait for that one instead of opening their own.
final class ConnectionPool: Sendable {
    private enum Slot {
        case empty
        case connecting(Task<any FrameConnection, any Error>)
        case connected(any FrameConnection)
    }

    private let size: Int
    private let anyServer: [LockedBox<Slot>]
    private let members = Mutex<[String: [LockedBox<Slot>]]>([:])
    private let next = Atomic<Int>(0)

    init(size: Int) {
        self.size = max(1, size)
        self.anyServer = (0..<max(1, size)).map { _ in LockedBox(Slot.empty) }
    }

    private func slot(for address: String?) -> LockedBox<Slot> {
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max
        guard let address else { return anyServer[index % size] }
        return members.withLock { pools in
            if let pool = pools[address] { return pool[index % pool.count] }
            let pool = (0..<size).map { _ in LockedBox(Slot.empty) }
            pools[address] = pool
            return pool[index % pool.count]
        }
    }

    /// A connection to `address` (to any server when nil), opened with `open` if need be.
    func connection(
        to address: String?, opening open: @escaping @Sendable () async throws -> any FrameConnection
    ) async throws -> any FrameConnection {
        enum Found {
            case ready(any FrameConnection)
            case pending(Task<any FrameConnection, any Error>)
        }
        let slot = slot(for: address)
        let found: Found = slot.withLock { state in
            switch state {
            case .connected(let c) where c.isActive:
                return .ready(c)
            case .connecting(let t):
                return .pending(t)
            default:
                let t = Task { try await open() }
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
