internal import CrucialCore
internal import Foundation

/// One plugin arriving in chunks over a connection, written to the plugin directory.
final class PluginUpload {
    let name: String
    let partialPath: String
    private let file: FileHandle
    private(set) var written: UInt64 = 0

    /// Starts an upload of `name` into `directory`.
    init(name: String, directory: String, connection: ConnectionID) throws(CrucialError) {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != "..", name.utf8.count <= 255 else {
            throw CrucialError(.badRequest, "plugin name \"\(name)\" must be a plain file name such as libMyTypes.so")
        }
        self.name = name
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CrucialError(.internal, "cannot create the plugin directory \(directory): \(error.localizedDescription)")
        }
        partialPath = "\(directory)/.\(name).\(connection.raw).partial"
        guard FileManager.default.createFile(atPath: partialPath, contents: nil), let handle = FileHandle(forWritingAtPath: partialPath) else {
            throw CrucialError(.internal, "cannot write \(partialPath)")
        }
        file = handle
    }

    /// Appends a chunk that must start where the previous one ended.
    func append(_ chunk: [UInt8], at offset: UInt64, limit: Int) throws(CrucialError) {
        guard offset == written else {
            throw CrucialError(.badRequest, "plugin chunk at offset \(offset), but \(written) bytes were received: send the chunks in order")
        }
        guard written + UInt64(chunk.count) <= UInt64(limit) else {
            throw CrucialError(.badRequest, "plugin \(name) exceeds this server's limit of \(limit) bytes")
        }
        do { try file.write(contentsOf: chunk) } catch {
            throw CrucialError(.internal, "cannot write \(partialPath): \(error.localizedDescription)")
        }
        written += UInt64(chunk.count)
    }

    /// Closes the file and moves it to a path of its own (the loader keys libraries by
    /// path, so a re-upload must not reuse one); returns that path.
    func finish(directory: String) throws(CrucialError) -> String {
        try? file.synchronize()  // on disk before the manifest names it
        try? file.close()
        let path = "\(directory)/\(UInt64(Date().timeIntervalSince1970 * 1000))-\(UInt32.random(in: 0...UInt32.max))-\(name)"
        do { try FileManager.default.moveItem(atPath: partialPath, toPath: path) } catch {
            throw CrucialError(.internal, "cannot store the plugin at \(path): \(error.localizedDescription)")
        }
        return path
    }

    /// Abandons the upload.
    func discard() {
        try? file.close()
        try? FileManager.default.removeItem(atPath: partialPath)
    }
}
