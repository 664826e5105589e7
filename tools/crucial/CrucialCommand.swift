import ArgumentParser
import CrucialClient
import Foundation

/// `crucial`: administration of a running Crucial DSO layer.
@main
struct CrucialCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crucial",
        abstract: "Administers Crucial DSO servers.",
        discussion: """
            Every subcommand reads --servers (default $CRUCIAL_SERVERS), --auth-token ($CRUCIAL_AUTH_TOKEN) and --tls-ca
            ($CRUCIAL_TLS_CA). Shell completion: crucial --generate-completion-script bash|zsh|fish.
            """,
        version: CrucialVersion.description,
        subcommands: [
            PingCommand.self, InfoCommand.self, TopCommand.self, CallCommand.self, Objects.self, PluginCommand.self, ClusterCommand.self, TypesCommand.self,
        ])
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
                let shown = signature.typedDisplay(name)
                print("  " + shown + String(repeating: " ", count: max(1, 60 - shown.count)) + "\(signature.kind)")
            }
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

    /// Every member of the cluster the servers named belong to (their view's addresses), or
    /// those servers when they are not a cluster.
    func members() async throws -> [String] {
        let client = try client()
        defer { client.close() }
        do { try await client.ping() } catch { return addresses() }  // each is tried, and reported, on its own
        return client.view?.members.map(\.address) ?? addresses()
    }

    func client(servers: [String]? = nil) throws -> CrucialClient {
        var configuration = CrucialClient.Configuration.fromEnvironment()
        configuration.servers = servers ?? addresses()
        if let authToken { configuration.authToken = authToken }
        if let tlsCa { configuration.tls = try ClientTLS(trustingFile: tlsCa) }
        configuration.retries = 1
        // A member that does not answer is reported, not waited for through a whole fail-over.
        configuration.failoverTimeout = .seconds(5)
        configuration.connectTimeout = .seconds(3)
        configuration.name = "crucial-admin"
        return CrucialClient(configuration: configuration)
    }
}

func printTable(header: [String], rows: [[String]]) { printTable(header: header, rows: rows, widths: nil) }

/// Prints `rows` (after `header`, if any) in columns; returns the widths used, so that a
/// later page keeps the first one's (longer cells push theirs out).
@discardableResult
func printTable(header: [String]?, rows: [[String]], widths: [Int]?) -> [Int] {
    let all = (header.map { [$0] } ?? []) + rows
    let columns = all.first?.count ?? 0
    let widths = widths ?? (0..<columns).map { i in all.map { $0[i].count }.max() ?? 0 }
    for row in all {
        print(row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: max(widths[i], cell.count), withPad: " ", startingAt: 0) }
            .joined(separator: "  "))
    }
    return widths
}

/// `s` as one shell word.
func shellQuoted(_ s: String) -> String {
    s.allSatisfy { $0.isLetter || $0.isNumber || "-_.:/@".contains($0) } && !s.isEmpty ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
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
