import CrucialCore
@testable import CrucialServerCore
import Foundation
import Testing

@Suite("A member's record in its data directory")
struct MemberRecordTests {
    @Test("Saved and loaded again whole; no file is a new member; an unreadable one says how to start afresh")
    func saveAndLoad() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-member-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try MemberRecord.load(directory: directory) == nil)

        var record = MemberRecord(cluster: "c", nodeID: "a")
        let view = View(id: 7, members: [View.Member(id: "a", address: "a:1", incarnation: 3), View.Member(id: "b", address: "b:1", incarnation: 1)], rf: 2)
        let holes = [Hole(members: ["a", "b", "c"], absent: ["c"]), Hole(members: ["a", "b", "d"], absent: [], lost: [Hole.Lost(id: "d", view: 6)])]
        record.record(ViewHistory(stable: view, holes: holes))
        for lease in [10, 11, 10, 12, 13, 14] as [Int64] { record.add(lease: lease) }
        #expect(record.leases == [11, 10, 12, 13, 14].suffix(4), "the newest four, the newest last, each once")
        try record.save(directory: directory)
        let loaded = try #require(try MemberRecord.load(directory: directory))
        #expect(loaded == record)
        #expect(loaded.history.stable?.members == view.members && loaded.history.holes == holes)
        // A record written before losses were told (no "lost") still loads.
        let old = #"{"cluster":"c","nodeID":"a","leases":[1],"stableViewID":7,"stableMembers":[],"holes":[{"members":["a","b"],"absent":["b"]}]}"#
        try Data(old.utf8).write(to: URL(fileURLWithPath: "\(directory)/\(MemberRecord.fileName)"))
        #expect(try MemberRecord.load(directory: directory)?.history.holes == [Hole(members: ["a", "b"], absent: ["b"])])

        try Data("{not json".utf8).write(to: URL(fileURLWithPath: "\(directory)/\(MemberRecord.fileName)"))
        #expect { try MemberRecord.load(directory: directory) } throws: { ($0 as? CrucialError)?.message.contains("move it away") == true }
    }
}
