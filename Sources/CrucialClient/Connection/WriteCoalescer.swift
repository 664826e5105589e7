public import NIOCore
internal import NIOConcurrencyHelpers

/// Writes items to a channel from any thread with one flush per burst: the first
/// item into an empty queue schedules a single event-loop task that writes
/// everything queued by then and flushes once. Items queued after that task
/// took the queue find it empty and schedule the next one, so none is left unflushed.
public final class WriteCoalescer<Item: Sendable>: Sendable {
    private let channel: any Channel
    private let queue = NIOLockedValueBox<[Item]>([])

    public init(channel: any Channel) {
        self.channel = channel
    }

    public func write(_ item: Item) {
        if channel.eventLoop.inEventLoop {
            channel.writeAndFlush(item, promise: nil)
            return
        }
        let first = queue.withLockedValue { q in
            q.append(item)
            return q.count == 1
        }
        guard first else { return }
        channel.eventLoop.execute { [self] in
            let batch = queue.withLockedValue { q in
                defer { q.removeAll(keepingCapacity: true) }
                return q
            }
            for item in batch { channel.write(item, promise: nil) }
            channel.flush()
        }
    }
}
