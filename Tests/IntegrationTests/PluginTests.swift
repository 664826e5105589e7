import CrucialClient
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
        #expect(load.out.hasSuffix(": plugin.Histogram\n"))

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

        // The same types again: refused, the loaded ones keep serving.
        let again = try await runCLI(["plugin", "load", plugin, "--servers", server.address])
        #expect(again.status == 1)
        #expect(again.err.contains("defines plugin.Histogram, which this server already knows"))
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
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-plugin-test-\(UUID())")
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
        #expect(try await root.loadPlugin(plugin, name: "libCrucialTestPlugin.so") == ["plugin.Histogram"])
        #expect(try await HistogramRef(client: app, key: "a").add([1, 2]) == 2)
    }
}
