import CrucialClient
import CrucialCore
import CrucialProcess
import Foundation
import Testing

/// The plugin's type as a client sees it: a raw reference, since the driver does not link the plugin.
struct HistogramRef {
    let client: CrucialClient
    let key: String
    var ref: ObjectRef { ObjectRef(type: "plugin.Histogram", key: key) }

    func add(_ samples: [Double]) async throws -> Int {
        let initial = Value.record(["buckets": .ints([0, 0, 0]), "width": .double(10)])
        let v = try await client.invoke(ref, "add", [.doubles(samples)], create: Create(initial: initial))
        return Int(v.intValue ?? -1)
    }

    func counts() async throws -> [Int64] {
        let v = try await client.invoke(ref, "counts", [], readOnly: true)
        return v.listValue?.compactMap(\.intValue) ?? []
    }
}

@Suite("Plugins: @Shared types loaded into running servers")
struct PluginTests {
    @Test("A plugin uploaded with `crucial plugin load` serves its type without a restart")
    func uploadAtRunTime() async throws {
        let server = try await TestServer()
        defer { server.stop() }  // gracefully: it removes its plugin directory
        let pid = server.server.processIdentifier
        let client = server.client(retries: 0)
        defer { client.close() }
        let histogram = HistogramRef(client: client, key: "h")
        do {
            _ = try await histogram.add([1])
            Issue.record("the type is unknown before the plugin is loaded")
        } catch let e as CrucialError {
            #expect(e.code == .unknownType)
            #expect(e.message.contains("plugin.Histogram"))
        }

        let plugin = try builtLibrary("CrucialTestPlugin")
        let load = try await runCLI(["plugin", "load", plugin, "--servers", server.address])
        #expect(load.status == 0, "\(load.err)")
        #expect(load.out.contains("\(server.address): loaded libCrucialTestPlugin.so"))
        #expect(load.out.hasSuffix(": plugin.Histogram, plugin.Tally\n"))

        #expect(try await histogram.add([1, 12, 15, 99]) == 4)
        #expect(try await histogram.add([0]) == 5)
        #expect(try await histogram.counts() == [2, 2, 1])
        do {
            _ = try await histogram.add([-1])
            Issue.record("a negative sample must throw on the server")
        } catch let e as CrucialError {
            #expect(e.code == .userError)
            #expect(e.message.contains("plugin.Histogram.add threw CrucialTestPlugin.HistogramError: sample -1.0 is not a non-negative number"))
        }
        #expect(try await client.state(of: histogram.ref) == .record(["buckets": .ints([2, 2, 1]), "width": .double(10)]))
        #expect(server.server.processIdentifier == pid && server.isRunning)

        // The same build again: its types' code is replaced by itself, every object stays.
        let again = try await runCLI(["plugin", "load", plugin, "--servers", server.address])
        #expect(again.status == 0, "\(again.err)")
        #expect(again.out.contains("replaced the code of plugin.Histogram, plugin.Tally, 0 objects carried over"))
        #expect(try await histogram.counts() == [2, 2, 1])
    }

    @Test("--plugin loads a plugin at start-up; a bad one stops the server with the reason")
    func startUp() async throws {
        let plugin = try builtLibrary("CrucialTestPlugin")
        let server = try await TestServer(arguments: ["--plugin", plugin])
        let client = server.client(retries: 0)
        defer { client.close() }
        #expect(try await HistogramRef(client: client, key: "s").add([5]) == 1)

        let notALibrary = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-plugin-\(UUID()).so").path
        try Data("hello".utf8).write(to: URL(fileURLWithPath: notALibrary))
        defer { try? FileManager.default.removeItem(atPath: notALibrary) }
        await #expect(throws: CrucialError.self) { try await TestServer(arguments: ["--plugin", notALibrary]) }
    }

    @Test("Plugins from another toolchain, non-plugins and non-libraries are refused with the reason; the server carries on")
    func refusals() async throws {
        let server = try await TestServer()
        defer { server.stop() }
        let client = server.client(retries: 0)
        defer { client.close() }
        let dir = URL(fileURLWithPath: ScratchFolders.path("plugin-test"))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        // The same plugin, as if another Swift toolchain had built it: its clang's commit differs.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try builtLibrary("CrucialTestPlugin"))))
        let marker = Array("swiftlang/llvm-project.git ".utf8)
        var patched = 0
        var i = 0
        while i + marker.count + 8 <= bytes.count {
            if bytes[i] == marker[0], Array(bytes[i..<(i + marker.count)]) == marker {
                for j in 0..<8 { bytes[i + marker.count + j] = Array("deadbeef".utf8)[j] }
                patched += 1
                i += marker.count
            }
            i += 1
        }
        #expect(patched >= 1)
        let foreign = dir.appendingPathComponent("libForeign.so")
        try Data(bytes).write(to: foreign)
        let refused = try await #require(throws: CrucialError.self) { try await client.loadPlugin(bytes, name: "libForeign.so") }
        #expect(refused.code == .badRequest)
        #expect(refused.message.contains("was built by another Swift toolchain"))
        #expect(refused.message.contains("deadbeef"))

        let text = try await #require(throws: CrucialError.self) { try await client.loadPlugin(Array("hello".utf8), name: "libText.so") }
        #expect(text.message.contains("is not a shared library"))

        let libprotobuf = ["/usr/lib/x86_64-linux-gnu/libprotobuf-c.so.1", "/usr/lib/aarch64-linux-gnu/libprotobuf-c.so.1"]
            .first { FileManager.default.fileExists(atPath: $0) }
        if let libprotobuf {
            let other = [UInt8](try Data(contentsOf: URL(fileURLWithPath: libprotobuf)))
            let notPlugin = try await #require(throws: CrucialError.self) { try await client.loadPlugin(other, name: "libprotobuf-c.so.1") }
            #expect(notPlugin.message.contains("exports no crucial_plugin_entry"))
        }
        let bad = try await #require(throws: CrucialError.self) { try await client.loadPlugin(Array("x".utf8), name: "../escape.so") }
        #expect(bad.message.contains("must be a plain file name"))

        try await client.ping()
        #expect(server.isRunning)
    }

    @Test("Loading a plugin needs the admin token when the server has tokens")
    func adminOnly() async throws {
        let server = try await TestServer(arguments: ["--auth-token", "app", "--admin-token", "root"])
        defer { server.stop() }
        let plugin = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try builtLibrary("CrucialTestPlugin"))))
        let app = CrucialClient(configuration: .init(servers: [server.address], authToken: "app", retries: 0))
        defer { app.close() }
        let refused = try await #require(throws: CrucialError.self) { try await app.loadPlugin(plugin, name: "libCrucialTestPlugin.so") }
        #expect(refused.code == .unauthenticated)
        #expect(refused.message.contains("needs the admin token"))

        let root = CrucialClient(configuration: .init(servers: [server.address], authToken: "root", retries: 0))
        defer { root.close() }
        #expect(try await root.loadPlugin(plugin, name: "libCrucialTestPlugin.so").types == ["plugin.Histogram", "plugin.Tally"])
        #expect(try await HistogramRef(client: app, key: "a").add([1, 2]) == 2)
    }
}

/// `plugin.Tally` through raw calls: each answer says which build of the plugin computed it.
struct TallyRef {
    let client: CrucialClient
    let key: String
    var persistent = false
    var ref: ObjectRef { ObjectRef(type: "plugin.Tally", key: key) }

    /// (count after the call, build number).
    func add(_ n: Int) async throws -> (count: Int, build: Int) {
        let v = try await client.invoke(ref, "add", [.int(Int64(n))], create: Create(initial: .record(["count": .int(0)]), persistent: persistent))
        let pair = v.listValue?.compactMap(\.intValue) ?? []
        return (Int(pair.first ?? -1), Int(pair.last ?? -1))
    }

    func total() async throws -> Int { Int(try await client.invoke(ref, "total", [], readOnly: true).intValue ?? -1) }
}

@Suite("Plugins: replacing a type's code in running servers, and keeping plugins across restarts")
struct PluginReplacementTests {
    @Test("A new build of a type replaces it under load: every call answered once, by one build, the old before the new")
    func replaceUnderLoad() async throws {
        let server = try await TestServer()
        defer { server.stop() }
        let v1 = try builtLibrary("CrucialTestPlugin"), v2 = try builtLibrary("CrucialTestPluginV2"), v3 = try builtLibrary("CrucialTestPluginV3")
        #expect(try await runCLI(["plugin", "load", v1, "--servers", server.address]).status == 0)
        let client = server.client()
        defer { client.close() }
        let tallies = (0..<3).map { TallyRef(client: client, key: "t\($0)") }
        for t in tallies { _ = try await t.add(0) }

        // Four writers on three objects, 300 calls each; the new build arrives after 150 answers.
        let answered = AtomicCounter()
        let writers = 4, calls = 300
        async let load: (status: Int32, out: String, err: String) = {
            while answered.load() < 150 { try await Task.sleep(for: .milliseconds(5)) }
            return try await runCLI(["plugin", "load", v2, "--servers", server.address])
        }()
        let answers = try await withThrowingTaskGroup(of: [(key: String, count: Int, build: Int)].self) { group in
            for w in 0..<writers {
                group.addTask {
                    var seen: [(key: String, count: Int, build: Int)] = []
                    for i in 0..<calls {
                        let t = tallies[(w + i) % tallies.count]
                        let (count, build) = try await t.add(1)
                        seen.append((t.key, count, build))
                        answered.add(1)
                    }
                    return seen
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let loaded = try await load
        #expect(loaded.status == 0, "\(loaded.err)")
        #expect(loaded.out.contains("replaced the code of plugin.Tally, 3 objects carried over"), "\(loaded.out)")

        for seen in answers {
            // One writer's calls follow each other: once the new build answered, the old never does again.
            let builds = seen.map(\.build)
            #expect(builds.allSatisfy { $0 == 1 || $0 == 2 })
            #expect(builds == builds.sorted(), "a writer saw the old build after the new one")
        }
        #expect(answers.flatMap { $0 }.contains { $0.build == 1 })
        #expect(answers.flatMap { $0 }.contains { $0.build == 2 })
        for t in tallies {
            // Each call on an object answered a count of its own: 1, 2, ... n, none lost or twice.
            let counts = answers.flatMap { $0 }.filter { $0.key == t.key }.map(\.count).sorted()
            #expect(counts == Array(1...counts.count))
            #expect(try await t.total() == counts.count)
        }
        #expect(try await tallies[0].add(0).build == 2)
        // The first build's states lacked `calls` (declared `= 0` in the second): each carried
        // over with 0 and counts the new build's calls alone.
        let newCalls = answers.flatMap { $0 }.filter { $0.key == tallies[0].key && $0.build == 2 }.count + 1
        #expect(try await client.state(of: tallies[0].ref).recordValue?["calls"] == .int(Int64(newCalls)))

        // A build whose state the objects' states do not decode into: refused, nothing changes.
        let refused = try await runCLI(["plugin", "load", v3, "--servers", server.address])
        #expect(refused.status == 1)
        #expect(refused.err.contains("cannot replace the code of plugin.Tally: 3 existing object(s) have a state its code does not decode"), "\(refused.err)")
        #expect(refused.err.contains("nothing was replaced"))
        #expect(try await tallies[1].add(1).build == 2)

        let listed = try await runCLI(["plugin", "ls", "--servers", server.address])
        #expect(listed.status == 0, "\(listed.err)")
        let tally = try #require(listed.out.split(separator: "\n").first { $0.contains("plugin.Tally") })
        #expect(tally.contains("plugin libCrucialTestPluginV2.so"))
        #expect(tally.contains("add,total"))
        let histogram = try #require(listed.out.split(separator: "\n").first { $0.contains("plugin.Histogram") })
        #expect(histogram.contains("plugin libCrucialTestPlugin.so"))
    }

    @Test("A client built with another version of a type is refused with both versions named, and nothing is done")
    func versionMismatch() async throws {
        let server = try await TestServer(arguments: ["--plugin", try builtLibrary("CrucialTestPlugin")])
        defer { server.stop() }
        let client = server.client(retries: 0)
        defer { client.close() }
        let info = try await client.serverInfo()
        let fingerprint = try #require(info.types.first { $0.type == "plugin.Tally" }?.fingerprint)
        #expect(fingerprint.count == 16)
        let t = TallyRef(client: client, key: "v")
        let create = Create(initial: .record(["count": .int(0)]))
        // The same version passes; another is refused before the object is even made.
        #expect(try await client.invoke(t.ref, "add", [.int(1)], create: create, typeVersion: fingerprint).listValue?.first == .int(1))
        let other = try await #require(throws: CrucialError.self) {
            try await client.invoke(ObjectRef(type: "plugin.Tally", key: "new"), "add", [.int(1)], create: create, typeVersion: "00000000000000ff")
        }
        #expect(other.code == .typeVersionMismatch)
        #expect(other.message.contains("the caller was built with version 00000000000000ff of the type, this server runs version \(fingerprint)"))
        #expect(other.message.contains("plugin libCrucialTestPlugin.so"))
        #expect(other.message.contains("methods: add, total"))
        let onExisting = try await #require(throws: CrucialError.self) {
            try await client.invoke(t.ref, "add", [.int(5)], typeVersion: "00000000000000ff")
        }
        #expect(onExisting.code == .typeVersionMismatch)
        #expect(try await t.total() == 1)
        #expect(try await client.listObjects(typePrefix: "plugin.Tally").map(\.ref.key) == ["v"])
    }

    @Test("Uploaded plugins are stored in the data directory and loaded again at start-up, before the objects are replayed")
    func persistAcrossRestart() async throws {
        let dir = ScratchFolders.path("plugin-restart")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The first start picks its port (a port found free beforehand can be taken by then on a
        // loaded machine: seen once in 20 stress runs); the restart takes the same one back.
        var server = try await TestServer(arguments: ["--data-dir", dir, "--fsync", "always"])
        let port = server.port
        let client = server.client(retries: 20)
        defer { client.close() }
        #expect(try await runCLI(["plugin", "load", try builtLibrary("CrucialTestPlugin"), "--servers", server.address]).status == 0)
        let t = TallyRef(client: client, key: "kept", persistent: true)
        for _ in 0..<5 { _ = try await t.add(2) }
        #expect(try await runCLI(["plugin", "load", try builtLibrary("CrucialTestPluginV2"), "--servers", server.address]).status == 0)
        #expect(try await t.add(1) == (11, 2))
        let manifest = try String(contentsOfFile: "\(dir)/plugins/plugins.manifest", encoding: .utf8)
        #expect(manifest.split(separator: "\n").count == 2, "\(manifest)")  // the first keeps Histogram: not superseded
        #expect(manifest.contains("-libCrucialTestPlugin.so\n") && manifest.hasSuffix("-libCrucialTestPluginV2.so\n"))

        await server.kill9()
        server = try await TestServer(port: port, arguments: ["--data-dir", dir, "--fsync", "always"])
        defer { server.stop() }
        #expect(try await t.total() == 11)
        #expect(try await t.add(1) == (12, 2))
        #expect(try await client.state(of: t.ref).recordValue?["calls"] == .int(2))
        // The same build once more: stored once.
        #expect(try await runCLI(["plugin", "load", try builtLibrary("CrucialTestPluginV2"), "--servers", server.address]).status == 0)
        let again = try String(contentsOfFile: "\(dir)/plugins/plugins.manifest", encoding: .utf8)
        #expect(again.split(separator: "\n").count == 2, "\(again)")
    }

    @Test("A member that joins gets the plugins of types it lacks; a new build reaches every member, and a replica serves it after a crash")
    func acrossCluster() async throws {
        let cluster = try await TestCluster(rf: 2)
        let a = try await cluster.start("a")
        #expect(try await runCLI(["plugin", "load", try builtLibrary("CrucialTestPlugin"), "--servers", a.address]).status == 0)
        let client = cluster.client(via: "a")
        defer { client.close() }
        let tallies = (0..<6).map { TallyRef(client: client, key: "c\($0)", persistent: true) }
        for t in tallies { _ = try await t.add(3) }

        // b joins: a gives it the plugin before the objects.
        let b = try await cluster.start("b")
        var listed = ""
        for _ in 0..<300 where !listed.contains("plugin.Tally") {
            listed = try await runCLI(["plugin", "ls", "--servers", b.address]).out
            if !listed.contains("plugin.Tally") { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(listed.contains("plugin.Tally") && listed.contains("plugin.Histogram"), "\(listed)")
        for t in tallies { #expect(try await t.add(1) == (4, 1)) }

        // The new build, given to one member, reaches both.
        let load = try await runCLI(["plugin", "load", try builtLibrary("CrucialTestPluginV2"), "--servers", a.address])
        #expect(load.status == 0, "\(load.err)")
        #expect(load.out.split(separator: "\n").filter { $0.contains("loaded libCrucialTestPluginV2.so") }.count == 2, "\(load.out)")
        for t in tallies { #expect(try await t.add(1) == (5, 2)) }

        // Every object has a copy on b (rf 2): with a gone, b answers with the new build and every change.
        await a.kill9()
        for t in tallies {
            #expect(try await t.total() == 5)
            #expect(try await t.add(1) == (6, 2))
        }
    }

    @Test("A plugin one member of three refuses is loaded by none: all keep the old code, and the CLI names the member and the object")
    func refusedByOneMember() async throws {
        let cluster = try await TestCluster(rf: 1)  // one copy: the object is on its primary alone
        for id in ["a", "b", "c"] { _ = try await cluster.start(id) }
        try await waitForView(cluster, ["a", "b", "c"])
        let a = cluster["a"]!, b = cluster["b"]!
        let first = try await runCLI(["plugin", "load", try builtLibrary("CrucialTestPlugin"), "--servers", a.address])
        #expect(first.status == 0, "\(first.err)")
        let client = cluster.client(via: "a")
        defer { client.close() }
        try await client.ping()
        let ring = HashRing(members: try #require(client.view).members)
        let key = try #require((0..<1000).lazy.map { "on-b-\($0)" }.first { ring.primary(for: ObjectRef(type: "plugin.Tally", key: $0))?.id == "b" })
        _ = try await TallyRef(client: client, key: key, persistent: true).add(2)

        // V3's state needs a property V1's lacks: b, which holds the object, refuses it.
        let refused = try await runCLI(["plugin", "load", try builtLibrary("CrucialTestPluginV3"), "--servers", a.address])
        #expect(refused.status == 1)
        #expect(refused.err.contains("\(b.address) refuses libCrucialTestPluginV3.so"), "\(refused.err)")
        #expect(refused.err.contains("plugin.Tally(\"\(key)\")") || refused.err.contains(key), "the object is named: \(refused.err)")
        #expect(refused.err.contains("no server loaded libCrucialTestPluginV3.so"), "\(refused.err)")
        #expect(!refused.out.contains("loaded"), "\(refused.out)")
        // Every member still runs the first build, the members without objects of the type included.
        let listed = try await runCLI(["plugin", "ls", "--servers", a.address])
        let rows = listed.out.split(separator: "\n").filter { $0.contains("plugin.Tally") }
        #expect(rows.count == 3, "\(listed.out)")
        #expect(rows.allSatisfy { $0.contains("libCrucialTestPlugin.so") }, "\(listed.out)")
        #expect(try await TallyRef(client: client, key: key, persistent: true).add(1) == (3, 1))
    }
}
