import Synchronization
internal import CrucialTransport
internal import NIOCore

/// Keeps a client's session (and, once it holds semaphore permits, the client itself) alive:
/// a `KeepAlive` every quarter of the lease, from an event-loop timer.
///
/// Not a task on Swift's cooperative pool: that pool has one thread per core, and a program
/// whose tasks compute (a cloud-thread driver checking results, a test running a checker)
/// can keep every one of them busy for seconds, long enough for a live driver's session to
/// lapse and its objects to go. The timer sends on an open connection straight from the
/// event loop; only when none is open does it start a task to open one.
final class SessionKeeper: Sendable {
    private let loop: any EventLoop
    private let interval: Duration
    private let timer = Mutex<RepeatedTask?>(nil)
    private let namesClient = Atomic<Bool>(false)

    init(loop: any EventLoop, lease: Duration) {
        self.loop = loop
        self.interval = lease / 4
    }

    /// Whether the keep-alives run (checked without a lock: every create asks).
    var isRunning: Bool { running.load(ordering: .relaxed) }
    private let running = Atomic<Bool>(false)

    /// Whether keep-alives name the client (it took semaphore permits).
    var keepsClient: Bool { namesClient.load(ordering: .relaxed) }

    /// Starts the keep-alives, unless they run already: the first goes out at once. `beat`
    /// sends one round of them; its argument: whether they name the client too.
    func start(_ beat: @escaping @Sendable (_ namesClient: Bool) -> Void) {
        timer.withLock { timer in
            guard timer == nil else { return }
            running.store(true, ordering: .relaxed)
            let every = TimeAmount.nanoseconds(max(1_000_000, interval.nanosecondsClamped))
            timer = loop.scheduleRepeatedTask(initialDelay: .zero, delay: every) { [weak self] task in
                guard let self else { return task.cancel() }
                beat(self.keepsClient)
            }
        }
    }

    /// Names the client in keep-alives from now on, and sends one at once.
    func keepClient(_ beat: @escaping @Sendable (_ namesClient: Bool) -> Void) {
        guard !namesClient.exchange(true, ordering: .relaxed) else { return }
        if timer.withLock({ $0 != nil }) { loop.execute { beat(true) } } else { start(beat) }
    }

    /// Stops the keep-alives (the session lapses after its lease unless ended first).
    func stop() {
        timer.withLock { timer in
            timer?.cancel()
            timer = nil
            running.store(false, ordering: .relaxed)
        }
    }
}
