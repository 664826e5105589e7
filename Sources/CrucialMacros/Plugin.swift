import SwiftCompilerPlugin
import SwiftSyntaxMacros

@main
struct CrucialMacrosPlugin: CompilerPlugin {
    let providingMacros: [any Macro.Type] = [SharedMacro.self, SharedKeyMacro.self]
}
