package import NIOCore

/// A `TaskExecutor` that runs jobs on one NIO event loop: tasks that prefer it run on the
/// thread that does their connections' I/O (CrucialClient's `taskExecutor`; the benchmark's
/// Redis client).
package final class EventLoopTaskExecutor: TaskExecutor {
    package let loop: any EventLoop

    package init(_ loop: any EventLoop) { self.loop = loop }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// Which of `count` connections a call takes when connection `i` lives on `loops[i % loops.count]`:
/// one on the caller's own loop when it runs on one and such a connection exists (round-robin
/// among them by `turn`), else any (round-robin).
package func loopAffineSlot(turn: Int, count: Int, loops: [any EventLoop]) -> Int {
    guard !loops.isEmpty, let here = loops.firstIndex(where: { $0.inEventLoop }), here < count else { return turn % count }
    let own = (count - 1 - here) / loops.count + 1  // this loop's slots: here, here + loops.count, ...
    return here + (turn % own) * loops.count
}
