@testable import CrucialMacrosImplementation
import SwiftSyntaxMacroExpansion
import SwiftSyntaxMacrosGenericTestSupport
import Testing

/// Every macro of the package, as the compiler sees them (with the conformances each adds).
private let macros: [String: MacroSpec] = [
    "Shared": MacroSpec(type: SharedExpansion.self, conformances: ["SharedType", "Codable"]),
    "SharedKey": MacroSpec(type: SharedKeyExpansion.self),
    "ReadOnly": MacroSpec(type: ReadOnlyExpansion.self),
    "BuiltinMethods": MacroSpec(type: BuiltinMethodsExpansion.self, conformances: ["BuiltinMethods"]),
]

/// Expands `source` and checks the expansion and the diagnostics (message, line, column).
func expect(_ source: String, expands expanded: String, diagnostics: [(String, Int, Int)] = [], line: UInt = #line) {
    assertMacroExpansion(
        source, expandedSource: expanded,
        diagnostics: diagnostics.map { DiagnosticSpec(message: $0.0, line: $0.1, column: $0.2) },
        macroSpecs: macros, indentationWidth: .spaces(4),
        failureHandler: { Issue.record(Comment(rawValue: $0.message)) }, line: line)
}
