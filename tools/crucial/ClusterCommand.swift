import ArgumentParser
import CrucialClient
import Foundation

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Shows the cluster's membership; accepts lost objects.", subcommands: [Status.self, AcceptLoss.self])

    struct AcceptLoss: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "accept-loss",
            abstract: "Accepts that every object lost so far is gone: they may be created afresh from now on (admin).",
            discussion: """
                An object whose every copy was on members that came back without their data (an empty data directory)
                answers DATA_LOSS to every call, creating ones included, until an operator accepts the loss: this
                accepts every loss the cluster knows of now (a later loss is refused again). To accept one object
                only: crucial objects forget TYPE KEY. `crucial cluster status` lists what is lost.
                """)

        @OptionGroup var server: ServerOptions

        func run() async throws {
            let client = try server.client()
            defer { client.close() }
            let (view, members) = try await client.acceptLoss()
            if members.isEmpty {
                print("nothing was lost (losses found up to view \(view) are accepted)")
            } else {
                print("accepted the loss of the objects whose every copy was on \(members.joined(separator: ", ")) (found up to view \(view)): they may be created afresh")
            }
        }
    }

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
            // What the members know of departed copies (every member knows the same).
            for hole in (try? await client.serverInfo().holes) ?? [] {
                let among = "of the objects whose every copy was on members of \(hole.members.joined(separator: ","))"
                if !hole.absent.isEmpty { print("unavailable until one is back: \(among) and on \(hole.absent.joined(separator: ",")) (away)") }
                if !hole.lost.isEmpty {
                    print("LOST: \(among) and on \(hole.lost.joined(separator: ",")) (back without their data): DATA_LOSS until `crucial cluster accept-loss`")
                }
            }
        }
    }
}

