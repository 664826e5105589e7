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
    private let channel: any Channel
    private let queue = Mutex<[Item]>([])
    private let dropped: @Sendable (Item) -> Void
    private let writesInline: Bool

    /// `writesInline`: an item written on the channel's event loop into an empty queue goes
    /// to the socket at once (the lowest latency); false queues it for the loop's next turn
    /// too, so that `write` never does I/O where it is called (under a caller's lock).
    package init(channel: any Channel, writesInline: Bool = true, dropped: @escaping @Sendable (Item) -> Void) {
        self.channel = channel
        self.writesInline = writesInline
        self.dropped = dropped
    }

    /// Items are written in the order their `write` calls happened, whatever the threads.
    package func write(_ item: Item) {
        let inLoop = writesInline && channel.eventLoop.inEventLoop
        // On the event loop, write at once unless earlier items still wait in the queue.
        let first = queue.withLock { q -> Bool? in
            if inLoop && q.isEmpty { return nil }
            q.append(item)
            return q.count == 1
        }
        guard let first else {
            // On the loop, `isActive` cannot change under us: true means the handlers are still there.
            if channel.isActive { channel.writeAndFlush(item, promise: nil) } else { dropped(item) }
            return
        }
        guard first else { return }
        channel.eventLoop.execute { [self] in
            let batch = queue.withLock { q in
                defer { q.removeAll(keepingCapacity: true) }
                return q
            }
            for item in batch {
                if channel.isActive { channel.write(item, promise: nil) } else { dropped(item) }
            }
            channel.flush()
        }
    }
}
