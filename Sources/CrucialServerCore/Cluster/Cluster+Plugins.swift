internal import CrucialCore
internal import Foundation
internal import Logging
internal import NIOCore

/// Plugins across a cluster: a member gives the others the plugins whose types they do not
/// know, before it hands objects over to them, so that a member that joins (or one that
/// restarted without its plugin directory) can hold objects of every type in use.
extension Cluster {
    /// Gives each other member of `view` this member's plugins for the types it lacks:
    /// every plugin still in use here from the first one with such a type on, in the order
    /// they were loaded here, so that the member ends with this member's code for each of
    /// their types. A member that knows every type gets nothing (`crucial plugin load`
    /// replaces code on all members; this only fills gaps).
    func sharePlugins(with view: View) async {
        let plugins = store.pluginsInUse()
        guard !plugins.isEmpty else { return }
        let links = state.withLock { s in
            let me = s.me.id
            return view.members.filter { $0.id != me }.map { link(to: $0, in: &s) }
        }
        for l in links {
            do {
                let known = try await userTypes(of: l)
                guard let first = plugins.firstIndex(where: { $0.typeNames.contains { !known.contains($0) } }) else { continue }
                for plugin in plugins[first...] {
                    try await upload(plugin, over: l)
                    logger.notice(
                        "gave a plugin to a member that lacked its types",
                        metadata: ["member": "\(l.member.id)", "plugin": "\(Plugin.uploadedName(plugin.path))", "types": "\(plugin.typeNames.joined(separator: ", "))"])
                }
            } catch {
                logger.warning("could not give plugins to a member", metadata: ["member": "\(l.member.id)", "error": "\(error)"])
            }
        }
    }

    /// The user types `link`'s member runs (its ServerInfo's `types`).
    private func userTypes(of link: PeerLink) async throws -> Set<String> {
        let frame = try await link.send { .serverInfo(id: $0) }.get()
        guard case .result(let reply) = frame, case .value(let info) = reply.outcome else {
            throw CrucialError(.internal, "member \(link.member.id) answered a ServerInfo with \(frame.kindName)")
        }
        return Set((info.recordValue?["types"]?.listValue ?? []).compactMap { $0.recordValue?["type"]?.stringValue })
    }

    /// Uploads `plugin`'s file to `link`'s member, which loads and stores it.
    private func upload(_ plugin: Plugin, over link: PeerLink) async throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: plugin.path)))
        let name = Plugin.uploadedName(plugin.path)
        let chunk = 4 << 20
        var offset = 0
        repeat {
            let end = min(bytes.count, offset + chunk)
            let frame = try await link.send {
                .loadPlugin(id: $0, name: name, offset: UInt64(offset), chunk: Array(bytes[offset..<end]), last: end == bytes.count)
            }.get()
            guard case .result(let reply) = frame else { throw CrucialError(.internal, "member answered a LoadPlugin with \(frame.kindName)") }
            if case .error(let error) = reply.outcome { throw error }
            offset = end
        } while offset < bytes.count
    }
}

extension ObjectStore {
    /// The plugins whose code some type runs here now (a later plugin may have replaced all
    /// of an earlier one's types), in the order they were loaded, each build once.
    func pluginsInUse() -> [Plugin] {
        let registry = self.registry
        var seen = Set<String>()
        var inUse: [Plugin] = []
        for plugin in plugins.reversed() where !seen.contains(plugin.build) {
            seen.insert(plugin.build)
            if plugin.typeNames.contains(where: { registry.code(of: $0)?.build == plugin.build }) { inUse.append(plugin) }
        }
        return inUse.reversed()
    }
}
