@testable import CrucialServer
import Foundation
import Testing

@Suite("crucial-server's settings: flags, then CRUCIAL_* variables, then the config file")
struct SettingSourcesTests {
    struct NoFile: Error {}

    static func resolve(_ commandLine: [String], env: [String: String] = [:], file: String? = nil) throws(SettingSources.Failure) -> [String] {
        try SettingSources.arguments(commandLine: commandLine, environment: env) { path in
            guard let file else { throw NoFile() }
            return file
        }
    }

    @Test("A flag wins over its variable, which wins over the file; each source fills what the stronger ones leave")
    func precedence() throws {
        let file = """
            port: 7000
            data-dir: /from/file
            fsync: always
            server-id: file-id
            """
        let args = try Self.resolve(
            ["--config", "c.yaml", "--port", "7100"], env: ["CRUCIAL_PORT": "7200", "CRUCIAL_DATA_DIR": "/from/env"], file: file)
        let command = try CrucialServerCommand.parse(args)
        #expect(command.port == 7100)
        #expect(command.dataDir == "/from/env")
        #expect(command.fsync == .always)
        #expect(command.serverID == "file-id")
        #expect(command.config == "c.yaml")
    }

    @Test("Variables: one per flag, lists comma-separated, flags as true/false; $CRUCIAL_CONFIG names the file")
    func environment() throws {
        #expect(SettingSources.variable(of: "max-frame-size") == "CRUCIAL_MAX_FRAME_SIZE")
        let args = try Self.resolve(
            [], env: ["CRUCIAL_PLUGIN": "/a.so, /b.so", "CRUCIAL_FAST_FAILOVER": "false", "CRUCIAL_CONFIG": "x.yaml", "CRUCIAL_SERVERS": "ignored:1"],
            file: "max-connections: 12")
        let command = try CrucialServerCommand.parse(args)
        #expect(command.plugins == ["/a.so", "/b.so"])
        #expect(command.fastFailover == false)
        #expect(command.maxConnections == 12)
        #expect(throws: SettingSources.Failure.self) { try Self.resolve([], env: ["CRUCIAL_FAST_FAILOVER": "maybe"]) }
        // --no-fast-failover on the command line beats the variable.
        let flagged = try CrucialServerCommand.parse(Self.resolve(["--fast-failover"], env: ["CRUCIAL_FAST_FAILOVER": "no"]))
        #expect(flagged.fastFailover == true)
    }

    @Test("The file: lists for repeatable flags, booleans for flags, nothing from an empty file; mistakes name the file and the key")
    func file() throws {
        let command = try CrucialServerCommand.parse(
            Self.resolve(["--config", "c.yaml"], file: "plugin: [/a.so, /b.so]\nfast-failover: false\nsession-lease: 2.5\n"))
        #expect(command.plugins == ["/a.so", "/b.so"] && command.fastFailover == false && command.sessionLease == 2.5)
        #expect(try Self.resolve(["--config", "c.yaml"], file: "") == ["--config", "c.yaml"])
        func refusal(_ text: String) -> String {
            do {
                _ = try Self.resolve(["--config", "c.yaml"], file: text)
                return "accepted"
            } catch { return error.description }
        }
        #expect(refusal("max_frame_size: 4096").contains("unknown setting \"max_frame_size\" (did you mean max-frame-size?)"))
        #expect(refusal("prot: 1").contains("--config c.yaml: unknown setting \"prot\""))
        #expect(refusal("- port").contains("must be a mapping of flag names to values"))
        #expect(refusal("port: [1, 2]").contains("\"port\" must be a single value"))
        #expect(refusal("fast-failover: sometimes").contains("\"fast-failover\" must be true or false"))
        #expect(refusal("port: [").contains("is not valid YAML"))
        #expect(throws: SettingSources.Failure.self) { try Self.resolve(["--config", "missing.yaml"]) }
    }

    @Test("Every flag of crucial-server has a variable and a key (the list matches the command's own help dump)")
    func everyFlag() throws {
        let dump = CrucialServerCommand._dumpHelp()
        let json = try #require(try JSONSerialization.jsonObject(with: Data(dump.utf8)) as? [String: Any])
        let command = try #require(json["command"] as? [String: Any])
        let arguments = try #require(command["arguments"] as? [[String: Any]])
        var names: Set<String> = []
        for argument in arguments {
            for name in (argument["names"] as? [[String: Any]]) ?? [] where name["kind"] as? String == "long" {
                if let n = name["name"] as? String { names.insert(n) }
            }
        }
        names.subtract(["help", "version", "config", "no-fast-failover"])
        #expect(names == Set(SettingSources.flags.keys))
    }
}

extension SettingSourcesTests {
    @Test("tools/systemd/crucial-server.yaml, the unit's example configuration, is a valid one")
    func systemdExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let path = root.appendingPathComponent("tools/systemd/crucial-server.yaml").path
        let args = try SettingSources.arguments(commandLine: ["--config", path], environment: [:]) { try String(contentsOfFile: $0, encoding: .utf8) }
        let command = try CrucialServerCommand.parse(args)
        #expect(command.etcd == "http://10.0.0.2:2379" && command.nodeId == "dso-1" && command.rf == 2 && command.metricsPort == 9479)
        #expect(command.authTokenFile == "/etc/crucial/auth-token" && command.dataDir == "/var/lib/crucial")
    }
}
