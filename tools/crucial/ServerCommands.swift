import ArgumentParser
import CrucialClient
import Foundation

/// `crucial ping`: whether each server answers, and how fast.
struct PingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping", abstract: "Checks that every server given answers; prints each one's round trip. Exits 1 if one does not.")

    @OptionGroup var server: ServerOptions

    @Option(help: "Pings per server (the round trip printed is the fastest).")
    var count = 3

    func validate() throws {
        guard (1...1000).contains(count) else { throw ValidationError("--count must be in 1...1000") }
    }

    func run() async throws {
        var failed = false
        for address in server.addresses() {
            let client = try server.client(servers: [address])
            defer { client.close() }
            do {
                try await client.ping()  // connects and proves the secret: not timed
                var best = Duration.seconds(3600)
                for _ in 0..<count {
                    let start = ContinuousClock.now
                    try await client.ping()
                    best = min(best, ContinuousClock.now - start)
                }
                print(String(format: "%@: PONG in %.3f ms", address, Double(best / .microseconds(1)) / 1000))
            } catch {
                StandardStreams.error("crucial: \(address): \(error)\n")
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}

/// `crucial info`: what each server is and holds; in a cluster, every member.
struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Prints what each server is and holds: release, uptime, objects, parked calls, sessions, connections, state, view.",
        discussion: "In a cluster every member of the view is asked; a member that does not answer is shown as unreachable (exit 1).")

    @OptionGroup var server: ServerOptions

    @Flag(help: "One JSON object per server.")
    var json = false

    func run() async throws {
        let client = try server.client()
        defer { client.close() }
        try await client.ping()
        let targets = client.view?.members.map { ($0.id, $0.address) } ?? server.addresses().map { ("", $0) }
        var rows: [[String]] = []
        var failed = false
        for (node, address) in targets {
            let memberClient = try server.client(servers: [address])
            defer { memberClient.close() }
            do {
                let info = try await memberClient.serverInfo()
                if json {
                    print(
                        jsonText(.record([
                            "address": .string(address), "server_id": .string(info.serverID), "release": .string(info.release),
                            "protocol": .int(Int64(info.protocolVersion)), "uptime_ms": .int(Int64(info.uptime / .milliseconds(1))),
                            "objects": .int(Int64(info.objects)), "persistent": .int(Int64(info.persistentObjects)),
                            "parked": .int(Int64(info.parkedCalls)), "sessions": .int(Int64(info.sessions)),
                            "connections": .int(Int64(info.connections)), "state_bytes": .int(Int64(info.stateBytes)),
                            "node": .string(info.node), "view": .int(Int64(info.viewID)), "members": .list(info.members.map(Value.string)),
                            "calls": .list(info.calls.map { .record(["type": .string($0.type), "method": .string($0.method), "count": .int(Int64($0.count))]) }),
                            "state": .string("up"),
                        ])))
                } else if targets.count == 1, client.view == nil {
                    printInfo(info, address: address)
                    return
                }
                rows.append([
                    info.node.isEmpty ? "-" : info.node, address, info.release, Self.duration(info.uptime), String(info.objects),
                    String(info.persistentObjects), String(info.parkedCalls), String(info.sessions), String(info.connections),
                    Self.bytes(info.stateBytes), "up",
                ])
            } catch {
                failed = true
                if json {
                    print(jsonText(.record(["address": .string(address), "node": .string(node), "state": .string("unreachable"), "error": .string("\(error)")])))
                }
                rows.append([node.isEmpty ? "-" : node, address, "-", "-", "-", "-", "-", "-", "-", "-", "unreachable"])
            }
        }
        if !json {
            if let view = client.view { print("view \(view.id), rf \(view.rf), \(view.members.count) member\(view.members.count == 1 ? "" : "s")") }
            printTable(
                header: ["NODE", "ADDRESS", "RELEASE", "UPTIME", "OBJECTS", "PERSISTENT", "PARKED", "SESSIONS", "CONNECTIONS", "STATE SIZE", "STATE"],
                rows: rows)
        }
        if failed { throw ExitCode(1) }
    }

    private func printInfo(_ info: ServerInfo, address: String) {
        let lines: [(String, String)] = [
            ("server", "\(info.serverID) at \(address)"), ("release", "\(info.release) (protocol \(info.protocolVersion))"),
            ("uptime", Self.duration(info.uptime)), ("objects", "\(info.objects) (\(info.persistentObjects) persistent)"),
            ("parked calls", String(info.parkedCalls)), ("sessions", String(info.sessions)), ("connections", String(info.connections)),
            ("object state", Self.bytes(info.stateBytes)), ("cluster", "none (a server on its own)"),
        ]
        for (key, value) in lines { print("\((key + ":").padding(toLength: 14, withPad: " ", startingAt: 0)) \(value)") }
    }

    static func duration(_ d: Duration) -> String {
        let s = Int(d / .seconds(1))
        if s < 120 { return "\(s)s" }
        if s < 7200 { return "\(s / 60)m\(s % 60)s" }
        if s < 172_800 { return "\(s / 3600)h\(s % 3600 / 60)m" }
        return "\(s / 86400)d\(s % 86400 / 3600)h"
    }

    static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n), unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// `crucial call`: one method call, for debugging.
struct CallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call",
        abstract: "Calls a method of an object and prints its answer as JSON.",
        discussion: """
            Each argument is JSON (5, 2.5, true, null, "text", [1, 2], {"k": 1}); anything that is not JSON is a string.
            A built-in type's method that only reads is sent as a read; every other call as a write. Examples:
              crucial call AtomicLong hits addAndGet 5
              crucial call SharedMap scores put '"alice"' 12 --create null
              crucial call CyclicBarrier round numberWaiting
            """)

    @OptionGroup var server: ServerOptions

    @Argument(help: "The object's type, e.g. AtomicLong or a @Shared type's name.")
    var type: String

    @Argument(help: "The object's key.")
    var key: String

    @Argument(help: "The method's wire name (crucial types lists the built-in ones).")
    var method: String

    @Argument(help: "The arguments, each JSON.")
    var arguments: [String] = []

    @Option(help: "Create the object first if it does not exist, with this initial state (JSON; null: the type's default).")
    var create: String?

    @Flag(help: "Create it persistent (it outlives this command; without: it belongs to this command's session and goes when that lapses, 30 s after).")
    var persistent = false

    func run() async throws {
        let client = try server.client()
        defer { client.close() }
        let answer = try await client.call(
            ObjectRef(type: type, key: key), method, arguments.map(Self.value(fromJSON:)), create: create.map(Self.value(fromJSON:)),
            persistent: persistent)
        print(jsonText(answer))
    }

    /// `text` parsed as JSON; text that is not JSON is a string.
    static func value(fromJSON text: String) -> Value {
        (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)))?.value ?? .string(text)
    }
}

/// A JSON value as a Crucial `Value`: integers stay integers, objects become records.
struct JSONValue: Decodable {
    let value: Value

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            value = .null
        } else if let b = try? c.decode(Bool.self) {
            value = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            value = .int(i)
        } else if let d = try? c.decode(Double.self) {
            value = .double(d)
        } else if let s = try? c.decode(String.self) {
            value = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            value = .list(a.map(\.value))
        } else {
            value = .record(try c.decode([String: JSONValue].self).mapValues(\.value))
        }
    }
}
