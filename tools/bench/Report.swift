import Foundation

/// One line of the results: Crucial, Redis, and the ratio in the "better" direction.
struct Row {
    let name: String
    let crucial: Double
    let redis: Double
    let lowerIsBetter: Bool
    let target: String

    init(_ name: String, _ crucial: Double, _ redis: Double, lowerIsBetter: Bool, target: String) {
        self.name = name
        self.crucial = crucial
        self.redis = redis
        self.lowerIsBetter = lowerIsBetter
        self.target = target
    }

    var ratio: Double { crucial / redis }

    static func fmt(_ x: Double) -> String { x >= 100 ? String(format: "%.0f", x) : String(format: "%.1f", x) }

    static func table(_ rows: [Row], peer: String = "redis") -> String {
        let width = max(20, rows.map(\.name.count).max() ?? 0)
        var s = "metric".padding(toLength: width, withPad: " ", startingAt: 0) + "crucial".leftPad(11) + peer.leftPad(11)
        s += "crucial/\(peer)".leftPad(peer == "redis" ? 16 : 18) + "  target\n"
        for r in rows {
            s += r.name.padding(toLength: width, withPad: " ", startingAt: 0)
            s += fmt(r.crucial).leftPad(11) + fmt(r.redis).leftPad(11) + String(format: "%.2f", r.ratio).leftPad(peer == "redis" ? 16 : 18)
            s += "  " + r.target + "\n"
        }
        return s
    }

    static func markdown(_ rows: [Row], peer: String = "Redis") -> String {
        var s = "| metric | Crucial | \(peer) | Crucial / \(peer) | target |\n| --- | ---: | ---: | ---: | --- |\n"
        for r in rows { s += "| \(r.name) | \(fmt(r.crucial)) | \(fmt(r.redis)) | \(String(format: "%.2f", r.ratio)) | \(r.target) |\n" }
        return s
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
