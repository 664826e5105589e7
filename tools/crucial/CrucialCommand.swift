import ArgumentParser
import CrucialClient
import Foundation

/// `crucial`: administration of a running Crucial DSO layer.
@main
struct CrucialCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crucial",
        abstract: "Administers Crucial DSO servers.",
        version: CrucialVersion.description,
        subcommands: [Objects.self, PluginCommand.self, ClusterCommand.self, TypesCommand.self])
}

/// `crucial types`: the built-in types and their methods, from the table servers and clients share.
struct TypesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "types", abstract: "Lists the built-in object types, their methods, parameters and kinds (read, write, shrink; blocking).")

    @Flag(help: "A Markdown table (as in docs/PROTOCOL.md).")
    var markdown = false

    func run() {
        if markdown { return print(BuiltinType.markdownReference) }
        for type in BuiltinType.allCases {
            print(type.typeName + (type.isSynchronizer ? " (synchronizer)" : ""))
            for (name, signature) in type.methods.sorted(by: { $0.key < $1.key }) {
                print("  \(signature.display(name).padding(toLength: 44, withPad: " ", startingAt: 0)) \(signature.kind)")
            }
        }
    }
}

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Shows the cluster's membership.", subcommands: [Status.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Prints the view (its id, rf and members) and, per member, the objects it holds and how many it is the primary of.")

        @OptionGroup var server: ServerOptions

        @Flag(help: "One JSON object per member.")
        var json = false

        func run() async throws {
            let client = try server.client()
            defer { client.close() }
            try await client.ping()
            guard let view = client.view else {
                let count = try await client.listObjects().count
                print("\(server.addresses().joined(separator: ",")) is a server on its own (no cluster): \(count) objects")
                return
            }
            let ring = HashRing(members: view.members)
            var rows: [[String]] = []
            for member in view.members {
                let memberClient = try server.client(servers: [member.address])
                defer { memberClient.close() }
                var row = [member.id, member.address]
                do {
                    let objects = try await memberClient.listObjects()
                    let primary = objects.filter { ring.primary(for: $0.ref)?.id == member.id }.count
                    let persistent = objects.filter(\.persistent).count
                    row += [String(objects.count), String(primary), String(objects.count - primary), String(persistent), "up"]
                } catch {
                    row += ["-", "-", "-", "-", "unreachable"]
                }
                rows.append(row)
            }
            if json {
                for r in rows {
                    print(
                        jsonText(.record([
                            "view": .int(Int64(view.id)), "rf": .int(Int64(view.rf)), "node": .string(r[0]), "address": .string(r[1]),
                            "objects": .int(Int64(r[2]) ?? -1), "primary": .int(Int64(r[3]) ?? -1), "replica": .int(Int64(r[4]) ?? -1),
                            "persistent": .int(Int64(r[5]) ?? -1), "state": .string(r[6]),
                        ])))
                }
                return
            }
            print("view \(view.id), rf \(view.rf), \(view.members.count) member\(view.members.count == 1 ? "" : "s")")
            printTable(header: ["NODE", "ADDRESS", "OBJECTS", "PRIMARY", "REPLICA", "PERSISTENT", "STATE"], rows: rows)
        }
    }
}

/// Where to reach the servers; shared by every subcommand.
struct ServerOptions: ParsableArguments {
    @Option(help: "Servers, comma-separated host:port (default: $CRUCIAL_SERVERS or 127.0.0.1:7420).")
    var servers: String?

    @Option(help: "Auth token (default: $CRUCIAL_AUTH_TOKEN).")
    var authToken: String?

    @Option(help: "Connect with TLS, trusting the PEM certificates in this file (default: $CRUCIAL_TLS_CA).")
    var tlsCa: String?

    /// The servers named, or those of the environment.
    func addresses() -> [String] {
        guard let servers else { return CrucialClient.Configuration.fromEnvironment().servers }
        return servers.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func client(servers: [String]? = nil) throws -> CrucialClient {
        var configuration = CrucialClient.Configuration.fromEnvironment()
        configuration.servers = servers ?? addresses()
        if let authToken { configuration.authToken = authToken }
        if let tlsCa { configuration.tls = try ClientTLS(trustingFile: tlsCa) }
        configuration.retries = 1
        configuration.name = "crucial-admin"
        return CrucialClient(configuration: configuration)
    }
}

struct Objects: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "objects", abstract: "Lists, shows and removes shared objects.", subcommands: [List.self, Get.self, Remove.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "Lists the objects: type, key, lifetime and parked calls.")

        @OptionGroup var server: ServerOptions

        @Option(name: .customLong("type"), help: "Only types starting with this.")
        var typePrefix = ""

        @Flag(help: "One JSON object per line.")
        var json = false

        func run() async throws {
            let client = try server.client()
            defer { client.close() }
            var objects = try await client.listObjects(typePrefix: typePrefix)
            if let view = client.view {
                // A cluster: every member's objects, each once (from its primary).
                let ring = HashRing(members: view.members)
                objects = []
                for member in view.members {
                    let memberClient = try server.client(servers: [member.address])
                    defer { memberClient.close() }
                    objects += try await memberClient.listObjects(typePrefix: typePrefix).filter { ring.primary(for: $0.ref)?.id == member.id }
                }
                objects.sort { ($0.ref.type, $0.ref.key) < ($1.ref.type, $1.ref.key) }
            }
            if json {
                for o in objects {
                    print(
                        jsonText(.record([
                            "type": .string(o.ref.type), "key": .string(o.ref.key), "persistent": .bool(o.persistent),
                            "session": .string(o.session == 0 ? "" : String(o.session, radix: 16)), "waiters": .int(Int64(o.waiters)),
                        ])))
                }
                return
            }
            let rows = objects.map { o in
                [o.ref.type, o.ref.key, o.persistent ? "persistent" : o.session == 0 ? "ephemeral" : "session \(String(o.session, radix: 16))",
                 String(o.waiters)]
            }
            printTable(header: ["TYPE", "KEY", "LIFETIME", "WAITERS"], rows: rows)
            print("\(objects.count) object\(objects.count == 1 ? "" : "s")")
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Prints an object's state as JSON.")

        @OptionGroup var server: ServerOptions

        @Argument(help: "The object's type, e.g. AtomicLong or a @Shared type's name.")
        var type: String

        @Argument(help: "The object's key.")
        var key: String

        func run() async throws {
            let client = try server.client()
            defer { client.close() }
            print(jsonText(try await client.state(of: ObjectRef(type: type, key: key))))
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Removes an object; its parked calls get NOT_FOUND. Exits 1 if it did not exist.")

        @OptionGroup var server: ServerOptions

        @Argument(help: "The object's type.")
        var type: String

        @Argument(help: "The object's key.")
        var key: String

        func run() async throws {
            let client = try server.client()
            defer { client.close() }
            let ref = ObjectRef(type: type, key: key)
            guard try await client.remove(ref) else {
                FileHandle.standardError.write(Data("crucial: \(ref) does not exist\n".utf8))
                throw ExitCode(1)
            }
            print("removed \(ref)")
        }
    }
}

struct PluginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin", abstract: "Loads plugins into running servers.", subcommands: [Load.self])

    struct Load: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "load",
            abstract: "Uploads a plugin (a shared library exporting @Shared types) to every server given; each loads it without restarting.",
            discussion: "Needs the servers' admin token (--auth-token or $CRUCIAL_AUTH_TOKEN set to it) unless they run without tokens.")

        @OptionGroup var server: ServerOptions

        @Argument(help: "The plugin, e.g. .build/release/libMyTypesPlugin.so")
        var path: String

        func run() async throws {
            let bytes: [UInt8]
            do { bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
                throw ValidationError("cannot read \(path): \(error.localizedDescription)")
            }
            let name = URL(fileURLWithPath: path).lastPathComponent
            var failed = false
            for address in server.addresses() {
                let client = try server.client(servers: [address])
                defer { client.close() }
                do {
                    let types = try await client.loadPlugin(bytes, name: name)
                    print("\(address): loaded \(name) (\(bytes.count) bytes): \(types.joined(separator: ", "))")
                } catch {
                    FileHandle.standardError.write(Data("crucial: \(address): \(error)\n".utf8))
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
        }
    }
}

func printTable(header: [String], rows: [[String]]) {
    let all = [header] + rows
    let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
    for row in all {
        print(row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  "))
    }
}

/// A value as JSON text: records as objects, byte strings as base64.
func jsonText(_ value: Value) -> String {
    func quote(_ s: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed])) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }
    func number(_ d: Double) -> String { d.isFinite ? "\(d)" : quote("\(d)") }
    switch value {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .int(let i): return String(i)
    case .double(let d): return number(d)
    case .string(let s): return quote(s)
    case .bytes(let b): return quote(Data(b).base64EncodedString())
    case .doubles(let d): return "[" + d.map(number).joined(separator: ",") + "]"
    case .ints(let i): return "[" + i.map(String.init).joined(separator: ",") + "]"
    case .list(let l): return "[" + l.map(jsonText).joined(separator: ",") + "]"
    case .record(let r): return "{" + r.sorted { $0.key < $1.key }.map { "\(quote($0.key)):\(jsonText($0.value))" }.joined(separator: ",") + "}"
    }
}
