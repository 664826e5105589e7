import CrucialCore
import Foundation
@testable import CrucialServerCore
import Testing

/// A server without a data directory keeps uploaded plugins in a temporary directory of its
/// own. It was named by the process id alone, and a server killed before it removed that
/// directory left its uploads for the next process given the same id (pid_max is 32768
/// here): that server loaded a dead server's plugins at start, unasked (found by
/// tools/stress-tests.sh: `PluginTests.uploadAtRunTime` saw its type known before the upload).
@Suite("Temporary plugin directories")
struct TemporaryPluginDirectoryTests {
    @Test("Each server's temporary plugin directory is its own, and nothing stored in it is loaded at start")
    func ownAndNeverReplayed() throws {
        let a = CrucialServer.Configuration(), b = CrucialServer.Configuration()
        #expect(a.pluginDirectory != b.pluginDirectory)
        #expect(a.pluginDirectoryIsTemporary && a.pluginDirectory.contains("crucial-plugins-\(getpid())-"))
        // What a dead server with the same name would have left: a manifest naming a "plugin".
        let stale = a.pluginDirectory
        try FileManager.default.createDirectory(atPath: stale, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: stale) }
        try Data("not a plugin".utf8).write(to: URL(fileURLWithPath: "\(stale)/stale.so"))
        try Data("stale.so\n".utf8).write(to: URL(fileURLWithPath: "\(stale)/\(PluginDirectory.manifestName)"))
        try CrucialServer(configuration: a).loadStoredPlugins()  // not read: no error
        // The same directory given on purpose is read, and the bad file refused (the check can fail).
        let explicit = CrucialServer.Configuration(pluginDirectory: stale)
        #expect(throws: CrucialError.self) { try CrucialServer(configuration: explicit).loadStoredPlugins() }
    }

    @Test("The temporary plugin directories of dead processes are removed at start; a live one's stays")
    func deadOnesSwept() throws {
        let temporary = NSTemporaryDirectory()
        // A process id nobody has now.
        let dead = try #require((2...Int32(32_767)).reversed().first { kill($0, 0) != 0 && errno == ESRCH })
        let deadOld = "\(temporary)crucial-plugins-\(dead)", deadNew = "\(temporary)crucial-plugins-\(dead)-5eed"
        let live = "\(temporary)crucial-plugins-\(getpid())-5eed"
        for path in [deadOld, deadNew, live] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        defer { for path in [deadOld, deadNew, live] { try? FileManager.default.removeItem(atPath: path) } }
        CrucialServer.removeDeadServersPluginDirectories()
        #expect(!FileManager.default.fileExists(atPath: deadOld) && !FileManager.default.fileExists(atPath: deadNew))
        #expect(FileManager.default.fileExists(atPath: live))
    }
}
