@testable import CrucialTransport
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

/// The coalescer in NIO's EmbeddedChannel, whose loop is the test's thread: every write is
/// made "on the loop", as a task preferring the client's executor makes it.
@Suite("Write coalescer: one flush per loop turn")
struct WriteCoalescerTests {
    /// Counts flushes reaching the head of the pipeline.
    final class FlushCounter: ChannelOutboundHandler, Sendable {
        typealias OutboundIn = Int
        let flushes = Atomic<Int>(0)
        func flush(context: ChannelHandlerContext) {
            flushes.add(1, ordering: .relaxed)
            context.flush()
        }
    }

    /// An EmbeddedChannel is active once "connected".
    static func active(_ channel: EmbeddedChannel) throws -> EmbeddedChannel {
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    @Test("Writes made on the loop go to the channel at once and out with one flush at the loop's next turn")
    func oneFlushPerTurn() throws {
        let counter = FlushCounter()
        let channel = try Self.active(EmbeddedChannel(handler: counter))
        let coalescer = WriteCoalescer<Int>(channel: channel) { _ in Issue.record("dropped") }
        for i in 1...5 { coalescer.write(i) }
        #expect(try channel.readOutbound(as: Int.self) == nil, "nothing is sent before the flush")
        channel.embeddedEventLoop.run()
        #expect(counter.flushes.load(ordering: .relaxed) == 1)
        #expect(try (1...5).map { _ in try channel.readOutbound(as: Int.self) } == [1, 2, 3, 4, 5])
        // The next turn's writes get a flush of their own.
        coalescer.write(6)
        channel.embeddedEventLoop.run()
        #expect(counter.flushes.load(ordering: .relaxed) == 2)
        #expect(try channel.readOutbound(as: Int.self) == 6)
    }

    @Test("Not inline (a sender under a lock): every write waits for the loop's turn, in order, with one flush")
    func queued() throws {
        let counter = FlushCounter()
        let channel = try Self.active(EmbeddedChannel(handler: counter))
        let coalescer = WriteCoalescer<Int>(channel: channel, writesInline: false) { _ in Issue.record("dropped") }
        for i in 1...3 { coalescer.write(i) }
        #expect(try channel.readOutbound(as: Int.self) == nil)
        channel.embeddedEventLoop.run()
        #expect(counter.flushes.load(ordering: .relaxed) == 1)
        #expect(try (1...3).map { _ in try channel.readOutbound(as: Int.self) } == [1, 2, 3])
    }

    @Test("An item whose turn comes after the channel closed goes to `dropped`, not to a bare pipeline")
    func droppedAfterClose() throws {
        let channel = try Self.active(EmbeddedChannel())
        let dropped = Mutex<[Int]>([])
        let coalescer = WriteCoalescer<Int>(channel: channel, writesInline: false) { i in dropped.withLock { $0.append(i) } }
        coalescer.write(1)
        try channel.close().wait()
        channel.embeddedEventLoop.run()
        #expect(dropped.withLock { $0 } == [1])
        coalescer.write(2)
        channel.embeddedEventLoop.run()
        #expect(dropped.withLock { $0 } == [1, 2])
    }
}
