import ArgumentParser
import CrucialClient
import Foundation

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

