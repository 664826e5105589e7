import ArgumentParser
import CrucialClient
import Foundation

struct Objects: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "objects", abstract: "Lists, shows and removes shared objects.", subcommands: [List.self, Get.self, Remove.self, Forget.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls",
            abstract: "Lists the objects: type, key, lifetime and parked calls, in (type, key) order.",
            discussion: """
                Objects are fetched in pages (--page-size) and printed as they come. --limit stops after that many and
                prints how to go on (--after-type, --after-key). In a cluster every member lists the objects it is the
                primary of; a member that does not answer is named on stderr and its objects are missing (exit 1).
                """)

        @OptionGroup var server: ServerOptions

        @Option(name: .customLong("type"), help: "Only types starting with this.")
        var typePrefix = ""

        @Option(help: "Print at most this many objects.")
        var limit: Int?

        @Option(help: "Start after this object (with --after-key): where the last --limit stopped.")
        var afterType: String?

        @Option(help: "Start after this key of --after-type.")
        var afterKey: String?

        @Option(help: "Objects asked of a server at a time.")
        var pageSize = 1000

        @Flag(help: "One JSON object per line.")
        var json = false

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
            guard (1...100_000).contains(pageSize) else { throw ValidationError("--page-size must be in 1...100000") }
            if (afterType == nil) != (afterKey == nil) { throw ValidationError("--after-type and --after-key go together") }
        }

        func run() async throws {
            let client = try server.client()
            defer { client.close() }
            try await client.ping()
            var after = afterType.map { ObjectRef(type: $0, key: afterKey ?? "") }
            let wanted = limit ?? Int.max
            var printed = 0
            var widths: [Int]?
            var missing: [String] = []
            // Sources: the server alone, or every member keeping the objects it is the primary of.
            var sources: [(name: String, client: CrucialClient, keep: (ObjectInfo) -> Bool)] = []
            defer { for s in sources where s.client !== client { s.client.close() } }
            if let view = client.view {
                let ring = HashRing(members: view.members)
                for member in view.members {
                    sources.append(("\(member.id) (\(member.address))", try server.client(servers: [member.address]), { ring.primary(for: $0.ref)?.id == member.id }))
                }
            } else {
                sources.append((server.addresses().joined(separator: ","), client, { _ in true }))
            }
            // Each source's next page, merged in order; a page is asked for only when needed.
            var buffers: [[ObjectInfo]] = Array(repeating: [], count: sources.count)
            var done = Array(repeating: false, count: sources.count)
            var cursors: [ObjectRef?] = Array(repeating: after, count: sources.count)
            func refill(_ i: Int) async {
                while buffers[i].isEmpty, !done[i] {
                    do {
                        let page = try await sources[i].client.listObjects(typePrefix: typePrefix, after: cursors[i], limit: pageSize)
                        cursors[i] = page.objects.last?.ref ?? cursors[i]
                        buffers[i] = page.objects.filter(sources[i].keep)
                        done[i] = !page.more
                    } catch {
                        missing.append(sources[i].name)
                        StandardStreams.error("crucial: \(sources[i].name) did not answer (\(error)): its objects are missing\n")
                        done[i] = true
                    }
                }
            }
            var page: [ObjectInfo] = []
            func flush() {
                guard !page.isEmpty else { return }
                if json {
                    for o in page {
                        print(jsonText(.record([
                            "type": .string(o.ref.type), "key": .string(o.ref.key), "persistent": .bool(o.persistent),
                            "session": .string(o.session == 0 ? "" : String(o.session, radix: 16)), "waiters": .int(Int64(o.waiters)),
                        ])))
                    }
                } else {
                    let rows = page.map { o in
                        [o.ref.type, o.ref.key, o.persistent ? "persistent" : o.session == 0 ? "ephemeral" : "session \(String(o.session, radix: 16))",
                         String(o.waiters)]
                    }
                    widths = printTable(header: widths == nil ? ["TYPE", "KEY", "LIFETIME", "WAITERS"] : nil, rows: rows, widths: widths)
                }
                page.removeAll()
            }
            while printed < wanted {
                for i in sources.indices { await refill(i) }
                guard let next = sources.indices.filter({ !buffers[$0].isEmpty }).min(by: { buffers[$0][0].ref.precedesInBytes(buffers[$1][0].ref) }) else { break }
                let object = buffers[next].removeFirst()
                page.append(object)
                after = object.ref
                printed += 1
                if page.count == pageSize { flush() }
            }
            flush()
            for i in sources.indices { await refill(i) }
            let more = sources.indices.contains { !buffers[$0].isEmpty }
            if !json {
                print("\(printed) object\(printed == 1 ? "" : "s")")
                if more, let after {
                    print("more follow: crucial objects ls --after-type \(shellQuoted(after.type)) --after-key \(shellQuoted(after.key))\(limit.map { " --limit \($0)" } ?? "")")
                }
            }
            if !missing.isEmpty { throw ExitCode(1) }
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

    struct Forget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "forget",
            abstract: "Accepts that a lost object is gone: it answers DATA_LOSS no more, and may be created afresh (admin).",
            discussion: """
                An object whose every copy was on members that came back without their data answers DATA_LOSS until an
                operator accepts the loss. This accepts it for this object alone; `crucial cluster accept-loss` does it
                for every lost object.
                """)

        @OptionGroup var server: ServerOptions

        @Argument(help: "The object's type.")
        var type: String

        @Argument(help: "The object's key.")
        var key: String

        func run() async throws {
            let client = try server.client()
            defer { client.close() }
            let ref = ObjectRef(type: type, key: key)
            let (view, _) = try await client.acceptLoss(of: ref)
            print("accepted the loss of \(ref) (found up to view \(view)): it may be created afresh")
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
                StandardStreams.error("crucial: \(ref) does not exist\n")
                throw ExitCode(1)
            }
            print("removed \(ref)")
        }
    }
}

