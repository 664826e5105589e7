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

    @Test("No file under Sources is over 400 lines unless its first lines say why (a comment starting \"One file:\")")
    func filesStaySmall() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let files = FileManager.default.enumerator(at: root.appendingPathComponent("Sources"), includingPropertiesForKeys: nil)
        var long: [String] = []
        while let file = files?.nextObject() as? URL {
            guard file.pathExtension == "swift" else { continue }
            let lines = try String(contentsOf: file, encoding: .utf8).components(separatedBy: "\n")
            if lines.count > 400, !lines.prefix(10).contains(where: { $0.contains("One file:") }) {
                long.append("\(file.lastPathComponent): \(lines.count) lines")
            }
        }
        #expect(long.isEmpty, "split these, or say at the top why they are one file: \(long.sorted())")
    }
}
