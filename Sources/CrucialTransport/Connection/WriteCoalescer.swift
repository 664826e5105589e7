import Synchronization
package import NIOCore

/// Writes items to a channel from any thread with one flush per burst: the first
/// item into an empty queue schedules a single event-loop task that writes
/// everything queued by then and flushes once. Items queued after that task
/// took the queue find it empty and schedule the next one, so none is left unflushed.
///
/// An item whose turn comes when the channel is no longer active goes to `dropped`
/// instead: once a channel closed, NIO removes its handlers, and a write reaching the
/// bare pipeline is discarded with nothing told (a request's answer would never come).
package final class WriteCoalescer<Item: Sendable>: Sendable {
    private struct State {
        var queue: [Item] = []
        /// An event-loop task will flush what was written on the loop without a flush.
        var flushPending = false
    }

    private let channel: any Channel
    private let state = Mutex(State())
    private let dropped: @Sendable (Item) -> Void
    private let writesInline: Bool
    /// Writes an item on the loop, and flushes: the channel's pipeline unless the owner
    /// hands items to its handler directly.
    private let sink: @Sendable (Item) -> Void
    private let flush: @Sendable () -> Void

    /// `writesInline`: an item written on the channel's event loop into an empty queue goes
    /// to the channel at once, and one flush at the loop's next turn sends it with every
    /// other item written on the loop meanwhile (calls of tasks running on the loop: one
    /// system call for all of them, Redis clients' automatic pipelining); false queues it
    /// for the loop's next turn too, so that `write` never touches the channel where it is
    /// called (under a caller's lock).
    ///
    /// `sink` and `flush`, called on the channel's loop, replace the channel's `write` and
    /// `flush` (a client connection hands requests straight to its handler: no `NIOAny`
    /// box and no pipeline walk per request).
    package init(
        channel: any Channel, writesInline: Bool = true, sink: (@Sendable (Item) -> Void)? = nil, flush: (@Sendable () -> Void)? = nil,
        dropped: @escaping @Sendable (Item) -> Void
    ) {
        self.channel = channel
        self.writesInline = writesInline
        self.dropped = dropped
        self.sink = sink ?? { [channel] item in channel.write(item, promise: nil) }
        self.flush = flush ?? { [channel] in channel.flush() }
    }

    private enum Next {
        case writeNow(scheduleFlush: Bool)
        case queued(first: Bool)
    }

    /// Items are written in the order their `write` calls happened, whatever the threads.
    package func write(_ item: Item) {
        let inLoop = writesInline && channel.eventLoop.inEventLoop
        // On the event loop, write at once unless earlier items still wait in the queue.
        let next = state.withLock { s -> Next in
            if inLoop && s.queue.isEmpty {
                defer { s.flushPending = true }
                return .writeNow(scheduleFlush: !s.flushPending)
            }
            s.queue.append(item)
            return .queued(first: s.queue.count == 1)
        }
        switch next {
        case .writeNow(let scheduleFlush):
            // On the loop, `isActive` cannot change under us: true means the handlers are still there.
            if channel.isActive { sink(item) } else { dropped(item) }
            guard scheduleFlush else { return }
            channel.eventLoop.execute { [self] in
                state.withLock { $0.flushPending = false }
                flush()
            }
        case .queued(let first):
            guard first else { return }
            channel.eventLoop.execute { [self] in
                let batch = state.withLock { s in
                    defer { s.queue.removeAll(keepingCapacity: true) }
                    return s.queue
                }
                for item in batch {
                    if channel.isActive { sink(item) } else { dropped(item) }
                }
                flush()
            }
        }
    }
}
