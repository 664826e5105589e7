import CrucialClient
import CrucialTestFunctions
import Foundation
import Synchronization
import Testing

/// A fresh data directory, removed by `cleanup()`.
struct DataDirectory {
    let path = ScratchFolders.path("data")
    func files() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Operations acknowledged so far, per writer.
final class Progress: Sendable {
    private let counts: Mutex<[Int]>
    init(_ writers: Int) { counts = Mutex([Int](repeating: 0, count: writers)) }
    func set(_ writer: Int, _ n: Int) { counts.withLock { $0[writer] = n } }
    var least: Int { counts.withLock { $0.min() ?? 0 } }
}

@Suite("Persistent objects on disk (--data-dir)")
struct PersistenceTests {
    @Test("kill -9 and restart keep every acknowledged operation (fsync=always, compacting all along)")
    func killAndRestart() async throws {
        let dir = DataDirectory()
        defer { dir.cleanup() }
        let arguments = ["--data-dir", dir.path, "--fsync", "always", "--compact-after", "4096"]
        let server = try await TestServer.withTestTypes(arguments: arguments)
        let setup = server.client(retries: 0)
        try await AtomicLong("gone", initial: 1, persistent: true, client: setup).incrementAndGet()
        try await AtomicLong("gone", initial: 1, persistent: true, client: setup).remove()
        try await AtomicLong("scratch", initial: 5, client: setup).incrementAndGet()  // ephemeral: not kept
        let centroids = TestCentroids.Shared("centroids", TestCentroids(k: 2, dims: 2), persistent: true, client: setup)
        try await centroids.update([[1, 2], [3, 4]], counts: [1, 2])
        setup.close()

        // 8 writers, each on objects of its own, count what was acknowledged until the kill.
        let writers = 8
        let progress = Progress(writers)
        let acked = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for w in 0..<writers {
                group.addTask {
                    let client = server.client(retries: 0)
                    defer { client.close() }
                    let counter = AtomicLong("counter-\(w)", initial: 0, persistent: true, client: client)
                    let tally = Tally.Shared("tally-\(w)", Tally(), persistent: true, client: client)
                    var n = 0
                    do {
                        while true {
                            try await counter.incrementAndGet()
                            try await tally.add(1, note: n % 50 == 0 ? "note \(n)" : "")
                            n += 1
                            progress.set(w, n)
                        }
                    } catch {}
                    return (w, n)
                }
            }
            // Kill once every writer is well under way and compaction ran. With fsync=always
            // a loaded machine (CI, a build beside the suite) may take half a minute to get
            // there: the bound only catches a hang.
            let deadline = ContinuousClock.now + .seconds(180)
            while progress.least < 40 || !dir.files().contains(where: { $0.hasPrefix("snapshot-") }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            await server.kill9()
            var acked = [Int](repeating: 0, count: writers)
            for try await (w, n) in group { acked[w] = n }
            return acked
        }
        #expect(acked.allSatisfy { $0 >= 40 }, "not every writer reached 40 acknowledged operations in 180 s: \(acked)")
        #expect(dir.files().contains { $0.hasPrefix("snapshot-") }, "compaction never ran: \(dir.files())")

        let restarted = try await TestServer.withTestTypes(arguments: arguments)
        let client = restarted.client()
        defer { client.close() }
        for w in 0..<writers {
            // The operation in flight at the kill may or may not have been logged; none acknowledged is lost.
            let value = try await AtomicLong("counter-\(w)", initial: 0, persistent: true, client: client).get()
            #expect(value == Int64(acked[w]) || value == Int64(acked[w] + 1), "counter-\(w): \(value) after \(acked[w]) acknowledged")
            let total = try await Tally.Shared("tally-\(w)", Tally(), persistent: true, client: client).current()
            #expect(total == Int64(acked[w]) || total == Int64(acked[w] - 1) || total == Int64(acked[w] + 1), "tally-\(w): \(total)")
            #expect(total <= value && value <= total + 1)
        }
        #expect(try await TestCentroids.Shared("centroids", TestCentroids(k: 2, dims: 2), client: client).centroids() == [[1, 2], [1.5, 2]])
        let keys = Set(try await client.listObjects().map(\.ref.key))
        #expect(!keys.contains("gone") && !keys.contains("scratch"))
        #expect(try await client.listObjects().allSatisfy(\.persistent))
    }

    @Test("A graceful restart keeps everything exactly; the damaged tail of a log is dropped")
    func gracefulRestartAndTornTail() async throws {
        let dir = DataDirectory()
        defer { dir.cleanup() }
        let arguments = ["--data-dir", dir.path, "--fsync", "everysec"]
        var server = try await TestServer(arguments: arguments)
        var client = server.client()
        let list = SharedList<String>("list", persistent: true, client: client)
        for i in 0..<100 { try await list.add("item \(i)") }
        let map = SharedMap<String, Int>("map", persistent: true, client: client)
        for i in 0..<50 { try await map.put("k\(i)", i * i) }
        _ = try await map.remove("k7")
        let array = AtomicDoubleArray("gradient", length: 4, persistent: true, client: client)
        try await array.add([1, 2, 3, 4])
        client.close()
        expectCleanExit(await server.stop())

        // A crash in the middle of a write leaves half a record at the end.
        let lastLog = try #require(dir.files().last { $0.hasPrefix("log-") })
        let handle = try #require(FileHandle(forWritingAtPath: "\(dir.path)/\(lastLog)"))
        handle.seekToEndOfFile()
        handle.write(Data([0x40, 0, 0, 0, 0xDE, 0xAD]))
        try handle.close()

        server = try await TestServer(arguments: arguments)
        client = server.client()
        defer {
            client.close()
            server.stop()
        }
        #expect(try await SharedList<String>("list", persistent: true, client: client).elements() == (0..<100).map { "item \($0)" })
        let restored = SharedMap<String, Int>("map", persistent: true, client: client)
        #expect(try await restored.size() == 49)
        #expect(try await restored.get("k9") == 81)
        #expect(try await restored.get("k7") == nil)
        #expect(try await AtomicDoubleArray("gradient", length: 4, persistent: true, client: client).elements() == [1, 2, 3, 4])
        // The restarted server keeps logging where it left off.
        try await restored.put("after", 1)
        expectCleanExit(await server.stop())
        server = try await TestServer(arguments: arguments)
        client = server.client()
        #expect(try await SharedMap<String, Int>("map", persistent: true, client: client).get("after") == 1)
    }

    @Test("A data directory naming a type the server does not know stops it with the reason")
    func unknownTypeInData() async throws {
        let dir = DataDirectory()
        defer { dir.cleanup() }
        let server = try await TestServer.withTestTypes(arguments: ["--data-dir", dir.path, "--fsync", "always"])
        let client = server.client()
        try await Tally.Shared("t", Tally(), persistent: true, client: client).add(1)
        client.close()
        expectCleanExit(await server.stop())
        // crucial-server without the test types cannot rebuild a test.Tally.
        await #expect(throws: CrucialError.self) { try await TestServer(arguments: ["--data-dir", dir.path]) }
    }

    @Test("A log damaged in the middle (an intact record after the damage) stops the server with the file and offset")
    func damageIsNotATornTail() async throws {
        let dir = DataDirectory()
        defer { dir.cleanup() }
        let arguments = ["--data-dir", dir.path, "--fsync", "always"]
        let server = try await TestServer(arguments: arguments)
        let client = server.client()
        let counter = AtomicLong("c", initial: 0, persistent: true, client: client)
        for _ in 0..<20 { try await counter.incrementAndGet() }
        client.close()
        expectCleanExit(await server.stop())
        let log = try #require(dir.files().last { $0.hasPrefix("log-") })
        let path = "\(dir.path)/\(log)"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0xFF  // one flipped bit pattern in a record in the middle
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        // `timeout` ends a server that (wrongly) starts.
        let r = try await runProcess("/usr/bin/timeout", ["20", try TestServer.binary(), "--port", "0"] + arguments)
        #expect(r.status != 0 && r.status != 124, "status \(r.status)")
        #expect(r.err.contains(path) && r.err.contains("is damaged at byte") && r.err.contains("intact record follows"), "\(r.err)")
    }
}

/// A data directory on a small tmpfs that fills up (mounting one needs root, as CI has).
@Suite("A full disk", .serialized, .timeLimit(.minutes(2)), .enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
struct DiskFullTests {
    @Test("A full data dir: persistent changes are refused naming it, reads and ephemeral objects go on, and writes resume by themselves once space is back; nothing acknowledged is lost")
    func fullDisk() async throws {
        let dir = DataDirectory()
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        let mount = try await runProcess("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir.path])
        try #require(mount.status == 0, "mount failed: \(mount.err)")
        defer {
            _ = try? runProcessBlocking("/bin/umount", ["-l", dir.path])
            dir.cleanup()
        }
        let arguments = ["--data-dir", dir.path, "--fsync", "always", "--compact-after", String(64 << 20)]
        var server = try await TestServer(arguments: arguments)
        var client = server.client(retries: 0)
        let counter = AtomicLong("counter", initial: 0, persistent: true, client: client)
        var acked: Int64 = 0
        for _ in 0..<50 {
            try await counter.incrementAndGet()
            acked += 1
        }
        // Fill the file system.
        let filler = "\(dir.path)/filler"
        _ = FileManager.default.createFile(atPath: filler, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: filler))
        let chunk = Data(repeating: 7, count: 16 << 10)
        while (try? handle.write(contentsOf: chunk)) != nil {}
        try? handle.close()

        var refusal: CrucialError?
        for _ in 0..<5000 {
            do {
                try await counter.incrementAndGet()
                acked += 1
            } catch let e as CrucialError {
                refusal = e
                break
            }
        }
        let error = try #require(refusal, "the server kept acknowledging writes on a full disk")
        #expect(error.code == .resourceExhausted && error.message.contains(dir.path) && error.message.contains("full"), "\(error)")
        // Refused again while full; reads and ephemeral objects go on.
        await #expect(throws: CrucialError.self) { try await counter.incrementAndGet() }
        #expect(try await counter.get() >= acked)
        #expect(try await AtomicLong("scratch", initial: 0, client: client).incrementAndGet() == 1)

        // Space is back: writes resume by themselves.
        try FileManager.default.removeItem(atPath: filler)
        let deadline = ContinuousClock.now + .seconds(30)
        var resumed = false
        while !resumed, ContinuousClock.now < deadline {
            do {
                try await counter.incrementAndGet()
                acked += 1
                resumed = true
            } catch {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        #expect(resumed, "writes did not resume after space came back")
        for _ in 0..<20 {
            try await counter.incrementAndGet()
            acked += 1
        }
        let before = try await counter.get()
        #expect(before >= acked)
        await server.kill9()
        client.close()
        server = try await TestServer(arguments: arguments)
        client = server.client()
        defer {
            client.close()
            server.stop()
        }
        // Every acknowledged increment, and the log matches what the server held.
        #expect(try await AtomicLong("counter", initial: 0, persistent: true, client: client).get() == before)
    }
}
