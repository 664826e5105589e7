internal import CrucialCore
internal import Foundation

/// What a cluster member keeps about itself in its data directory (`member.json`):
/// which member of which cluster it is, the etcd leases it registered with, and the
/// cluster's past as it last saw it.
///
/// The leases are its proof of identity after a restart: etcd still holds its old key
/// under one of them until that lease lapses, and a process that can show the lease
/// (and holds the data directory's lock, so the old process is gone) may take the key
/// over at once instead of waiting for the lapse.
struct MemberRecord: Codable, Equatable, Sendable {
    struct Member: Codable, Equatable, Sendable {
        var id: String
        var address: String
        var incarnation: UInt64
    }

    struct StoredHole: Codable, Equatable, Sendable {
        var members: [String]
        var absent: [String]
        /// Members back without their data, each with the view it came back in (absent in
        /// records written before losses were told).
        var lost: [StoredLost]?
    }

    struct StoredLost: Codable, Equatable, Sendable {
        var id: String
        var view: UInt64
    }

    static let fileName = "member.json"

    var cluster: String
    var nodeID: String
    /// The newest last; a few are kept, because a crash can come between granting a lease
    /// and putting the key under it.
    var leases: [Int64] = []
    /// The last view this member served, and the holes it knew of then.
    var stableViewID: UInt64 = 0
    var stableMembers: [Member] = []
    var holes: [StoredHole] = []

    var stableView: View? {
        guard stableViewID != 0 else { return nil }
        return View(
            id: stableViewID, members: stableMembers.map { View.Member(id: $0.id, address: $0.address, incarnation: $0.incarnation) },
            rf: 0)
    }

    var history: ViewHistory {
        ViewHistory(
            stable: stableView,
            holes: holes.map { Hole(members: $0.members, absent: $0.absent, lost: ($0.lost ?? []).map { Hole.Lost(id: $0.id, view: $0.view) }) })
    }

    mutating func record(_ history: ViewHistory) {
        stableViewID = history.stable?.id ?? 0
        stableMembers = history.stable?.members.map { Member(id: $0.id, address: $0.address, incarnation: $0.incarnation) } ?? []
        holes = history.holes.map {
            StoredHole(members: $0.members, absent: $0.absent, lost: $0.lost.isEmpty ? nil : $0.lost.map { StoredLost(id: $0.id, view: $0.view) })
        }
    }

    mutating func add(lease: Int64) {
        leases.removeAll { $0 == lease }
        leases.append(lease)
        if leases.count > 4 { leases.removeFirst(leases.count - 4) }
    }

    /// The record in `directory`, or nil if there is none (a new member).
    static func load(directory: String) throws(CrucialError) -> MemberRecord? {
        let path = "\(directory)/\(fileName)"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(MemberRecord.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw CrucialError(.internal, "\(path) is unreadable (\(error)); move it away to start this member afresh")
        }
    }

    /// Writes the record atomically (a temporary file, fsync, rename, fsync of the directory).
    func save(directory: String) throws(CrucialError) {
        let path = "\(directory)/\(Self.fileName)"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes: [UInt8]
        do { bytes = [UInt8](try encoder.encode(self)) } catch { throw CrucialError(.internal, "cannot encode \(path): \(error)") }
        try DurableFile.replace(path, with: bytes)
    }
}
