internal import CrucialCore
internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// The plugin directory: uploaded plugins, and `plugins.manifest`, the files that loaded,
/// one name per line in the order they were loaded. A server that starts with the same
/// directory loads them again in that order (a later one replacing an earlier one's
/// types), before it replays its data directory.
struct PluginDirectory {
    static let manifestName = "plugins.manifest"
    let path: String

    var manifestPath: String { "\(path)/\(Self.manifestName)" }

    /// The stored plugins, in load order (their full paths).
    func stored() throws(CrucialError) -> [String] {
        guard FileManager.default.fileExists(atPath: manifestPath) else { return [] }
        let text: String
        do { text = try String(contentsOfFile: manifestPath, encoding: .utf8) } catch {
            throw CrucialError(.internal, "cannot read \(manifestPath): \(error.localizedDescription)")
        }
        return text.split(separator: "\n").map { "\(path)/\($0)" }
    }

    /// Adds the plugin at `file` (a file of this directory) to the manifest, durably: the
    /// new manifest is written beside it, synced, and renamed over it.
    func record(_ file: String) throws(CrucialError) {
        let name = URL(fileURLWithPath: file).lastPathComponent
        var names = try stored().map { URL(fileURLWithPath: $0).lastPathComponent }
        names.removeAll { $0 == name }
        names.append(name)
        try write(names)
    }

    /// Removes `names` from the manifest and deletes their files (plugins whose every type
    /// another plugin loaded since replaces).
    func forget(_ names: Set<String>) throws(CrucialError) {
        guard !names.isEmpty else { return }
        let kept = try stored().map { URL(fileURLWithPath: $0).lastPathComponent }.filter { !names.contains($0) }
        try write(kept)
        for name in names { try? FileManager.default.removeItem(atPath: "\(path)/\(name)") }
    }

    /// Forgets the stored plugins whose every type a plugin stored after them brings
    /// again: a restart would replace all their code anyway. `loaded`: the plugins loaded,
    /// for their types.
    func prune(loaded: [Plugin]) throws(CrucialError) {
        let types = Dictionary(loaded.map { ($0.path, Set($0.typeNames)) }, uniquingKeysWith: { $1 })
        var later = Set<String>()
        var superseded = Set<String>()
        for path in try stored().reversed() {
            guard let mine = types[path] else { continue }
            if mine.isSubset(of: later) { superseded.insert(URL(fileURLWithPath: path).lastPathComponent) }
            later.formUnion(mine)
        }
        try forget(superseded)
    }

    private func write(_ names: [String]) throws(CrucialError) {
        let temporary = "\(manifestPath).tmp"
        let bytes = Array(names.map { $0 + "\n" }.joined().utf8)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CrucialError(.internal, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, manifestPath) == 0 else {
            throw CrucialError(.internal, "cannot write \(manifestPath): \(String(cString: strerror(errno)))")
        }
        // The rename itself survives a crash once the directory is synced.
        let dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            _ = fsync(dir)
            close(dir)
        }
    }
}
