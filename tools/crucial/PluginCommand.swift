import ArgumentParser
import CrucialClient
import Foundation

struct PluginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin", abstract: "Loads plugins into running servers and lists the types they run.", subcommands: [Load.self, List.self])

    struct Load: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "load",
            abstract: "Uploads a plugin (a shared library exporting @Shared types) to every server; each loads it without restarting.",
            discussion: """
                In a cluster, every member of the view gets it, all or nothing: first every member checks the plugin against \
                every object it holds, and only when all accept does any load it. A type a server knows already gets the \
                plugin's code: each object of the type is carried over through its state (encoded by the old code, decoded by \
                the new), calls in progress finish on the old code and later calls run the new. When a member refuses (some \
                object's state does not decode with the new code), the command names it and the object, and no member loads \
                the plugin. Servers store the plugin and load it again when they restart. Needs the servers' admin token (--auth-token or $CRUCIAL_AUTH_TOKEN set to it) unless they \
                run without tokens.
                """)

        @OptionGroup var server: ServerOptions

        @Argument(help: "The plugin, e.g. .build/release/libMyTypesPlugin.so")
        var path: String

        func run() async throws {
            let bytes: [UInt8]
            do { bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
                throw ValidationError("cannot read \(path): \(error.localizedDescription)")
            }
            let name = URL(fileURLWithPath: path).lastPathComponent
            let members = try await server.members()
            // First every member checks it: one refusal and none loads it (a refused load on a
            // member after others took the new code would leave the cluster running two).
            var refusals: [String] = []
            for address in members {
                let client = try server.client(servers: [address])
                defer { client.close() }
                do {
                    let check = try await client.checkPlugin(bytes, name: name)
                    if !check.checkedOnly {
                        StandardStreams.error(
                            "crucial: \(address) runs an earlier release, which cannot check a plugin first: it loaded \(name) already\n")
                    }
                } catch {
                    refusals.append("\(address) refuses \(name): \(error)")
                }
            }
            guard refusals.isEmpty else {
                for refusal in refusals { StandardStreams.error("crucial: \(refusal)\n") }
                StandardStreams.error("crucial: no server loaded \(name): every one keeps the code it runs\n")
                throw ExitCode(1)
            }
            var failed = false
            var loaded: [String] = []
            for address in members {
                let client = try server.client(servers: [address])
                defer { client.close() }
                do {
                    let load = try await client.loadPlugin(bytes, name: name)
                    var line = "\(address): loaded \(name) (\(bytes.count) bytes): \(load.types.joined(separator: ", "))"
                    if !load.replaced.isEmpty {
                        line += "; replaced the code of \(load.replaced.joined(separator: ", ")), \(load.converted) object\(load.converted == 1 ? "" : "s") carried over"
                    }
                    print(line)
                    loaded.append(address)
                    for (ref, reason) in load.kept {
                        print("\(address): \(ref) keeps its old code: \(reason)")
                    }
                } catch {
                    // Every member accepted it a moment ago: an object changed since, or the member went.
                    StandardStreams.error("crucial: \(address): \(error)\n")
                    failed = true
                }
            }
            if failed {
                StandardStreams.error(
                    "crucial: \(name) was checked by every member, but not every member loaded it; those running it: "
                        + "\(loaded.isEmpty ? "none" : loaded.joined(separator: ", ")). Load it again, or load the plugin they ran before\n")
                throw ExitCode(1)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls",
            abstract: "Lists the user types each server runs: fingerprint, methods and the plugin (or binary) they came from.",
            discussion: "A client built with another fingerprint of a type is refused by a server (TYPE_VERSION_MISMATCH). Exits 1 if a server does not answer.")

        @OptionGroup var server: ServerOptions

        @Flag(help: "One JSON object per server and type.")
        var json = false

        func run() async throws {
            var rows: [[String]] = []
            var failed = false
            for address in try await server.members() {
                let client = try server.client(servers: [address])
                defer { client.close() }
                do {
                    for type in try await client.serverInfo().types {
                        if json {
                            print(
                                jsonText(.record([
                                    "address": .string(address), "type": .string(type.type), "fingerprint": .string(type.fingerprint),
                                    "origin": .string(type.origin), "build": .string(type.build), "methods": .list(type.methods.map(Value.string)),
                                ])))
                        }
                        rows.append([address, type.type, type.fingerprint.isEmpty ? "-" : type.fingerprint, type.origin, type.methods.joined(separator: ",")])
                    }
                } catch {
                    StandardStreams.error("crucial: \(address): \(error)\n")
                    failed = true
                }
            }
            if !json { printTable(header: ["SERVER", "TYPE", "FINGERPRINT", "FROM", "METHODS"], rows: rows) }
            if failed { throw ExitCode(1) }
        }
    }
}
