import Foundation
import Testing

@Suite("Documentation")
struct DocumentationTests {
    @Test("Every public declaration under Sources has a /// doc comment")
    func publicDeclarationsAreDocumented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let sources = root.appendingPathComponent("Sources")
        let declaration = try Regex(
            #"^\s*(@\w+(\([^)]*\))?\s+)*(public|open)\s+(func|var|let|init|struct|class|enum|protocol|typealias|static|subscript|convenience|final|mutating|required|actor|nonisolated|indirect|override)\b"#)
        var missing: [String] = []
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)
        while let file = files?.nextObject() as? URL {
            guard file.pathExtension == "swift" else { continue }
            let lines = try String(contentsOf: file, encoding: .utf8).components(separatedBy: "\n")
            for (i, line) in lines.enumerated() where line.firstMatch(of: declaration) != nil {
                var j = i - 1
                while j >= 0, lines[j].trimmingCharacters(in: .whitespaces).hasPrefix("@") { j -= 1 }
                let previous = j >= 0 ? lines[j].trimmingCharacters(in: .whitespaces) : ""
                if !previous.hasPrefix("///") && !previous.hasSuffix("*/") {
                    missing.append("\(file.path.dropFirst(root.path.count + 1)):\(i + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(missing.isEmpty, "undocumented public declarations:\n\(missing.sorted().joined(separator: "\n"))")
    }
}
