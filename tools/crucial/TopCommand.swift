import ArgumentParser
import CrucialClient
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `crucial top`: the DSO layer live, for people: members, view, objects, calls per second
/// per type and method, parked calls, refreshed in the terminal.
struct TopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Shows the servers live: members, view, objects, parked calls, and calls per second per type and method.",
        discussion: """
            Refreshes every --interval seconds until interrupted (Ctrl-C), or --iterations times. On a terminal each
            screen replaces the last; piped, the screens follow one another. The rates are over the last interval,
            summed over the members.
            """)

    @OptionGroup var server: ServerOptions

    @Option(help: "Seconds between refreshes.")
    var interval = 2.0

    @Option(help: "Stop after this many screens (default: run until interrupted).")
    var iterations: Int?

    @Option(help: "Methods shown, busiest first.")
    var rows = 20

    func validate() throws {
        guard interval >= 0.1, interval <= 3600 else { throw ValidationError("--interval must be in [0.1, 3600] seconds") }
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1") }
        guard rows >= 1 else { throw ValidationError("--rows must be at least 1") }
    }

    struct Sample {
        var at: ContinuousClock.Instant
        /// Calls so far per member, per "type method".
        var calls: [String: [String: Int]]
    }

    func run() async throws {
        let client = try server.client()
        defer { client.close() }
        try await client.ping()
        let terminal = isatty(STDOUT_FILENO) == 1
        var previous: Sample?
        var screen = 0
        while iterations.map({ screen < $0 }) ?? true {
            let targets = client.view?.members.map { ($0.id, $0.address) } ?? server.addresses().map { ("", $0) }
            var infos: [(node: String, address: String, info: ServerInfo?)] = []
            for (node, address) in targets {
                let memberClient = try server.client(servers: [address])
                defer { memberClient.close() }
                infos.append((node, address, try? await memberClient.serverInfo()))
            }
            let now = ContinuousClock.now
            var sample = Sample(at: now, calls: [:])
            for entry in infos {
                guard let info = entry.info else { continue }
                sample.calls[entry.address] = Dictionary(info.calls.map { ("\($0.type) \($0.method)", $0.count) }, uniquingKeysWith: +)
            }
            var text = ""
            let stamp = ISO8601DateFormatter().string(from: Date())
            if let view = client.view {
                text += "crucial top — view \(view.id), rf \(view.rf), \(view.members.count) member\(view.members.count == 1 ? "" : "s") — \(stamp)\n"
            } else {
                text += "crucial top — \(targets.map(\.1).joined(separator: ", ")) — \(stamp)\n"
            }
            text += "\n"
            var memberRows: [[String]] = []
            for entry in infos {
                guard let info = entry.info else {
                    memberRows.append([entry.node.isEmpty ? "-" : entry.node, entry.address, "-", "-", "-", "-", "-", "-", "unreachable"])
                    continue
                }
                memberRows.append([
                    info.node.isEmpty ? "-" : info.node, entry.address, InfoCommand.duration(info.uptime), String(info.objects),
                    String(info.persistentObjects), String(info.parkedCalls), String(info.connections), InfoCommand.bytes(info.stateBytes), "up",
                ])
            }
            text += table(["NODE", "ADDRESS", "UPTIME", "OBJECTS", "PERSISTENT", "PARKED", "CONNECTIONS", "STATE SIZE", "STATE"], memberRows)
            text += "\n"
            if let previous {
                let seconds = max(0.001, Double((now - previous.at) / .milliseconds(1)) / 1000)
                var rates: [String: Double] = [:]
                for (address, calls) in sample.calls {
                    for (method, count) in calls {
                        let before = previous.calls[address]?[method] ?? 0
                        rates[method, default: 0] += Double(max(0, count - before)) / seconds
                    }
                }
                let total = rates.values.reduce(0, +)
                text += String(format: "calls/s: %.0f in all over the last %.1f s\n", total, seconds)
                let busiest = rates.filter { $0.value > 0 }.sorted { $0.value > $1.value }.prefix(rows)
                text += table(
                    ["TYPE", "METHOD", "CALLS/S"],
                    busiest.map { key, rate in
                        let parts = key.split(separator: " ", maxSplits: 1).map(String.init)
                        return [parts[0], parts.count > 1 ? parts[1] : "", String(format: "%.0f", rate)]
                    })
            } else {
                text += "calls/s: measuring (one interval)...\n"
            }
            if terminal { print("\u{1B}[H\u{1B}[2J", terminator: "") }  // home, clear
            print(text, terminator: terminal ? "" : "\n")
            fflush(nil)
            previous = sample
            screen += 1
            if iterations.map({ screen < $0 }) ?? true { try await Task.sleep(for: .milliseconds(Int64(interval * 1000))) }
        }
    }

    private func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
