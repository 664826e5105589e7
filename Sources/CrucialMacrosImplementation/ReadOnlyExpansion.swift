import SwiftDiagnostics
import SwiftSyntax
import SwiftSyntaxMacros

/// `@ReadOnly`: adds nothing (the enclosing `@Shared` type's expansion reads the mark);
/// refuses a mark that would mean nothing, on a method outside a `@Shared` type.
public struct ReadOnlyExpansion: PeerMacro {
    /// Checks where the attribute is; expands to nothing.
    public static func expansion(
        of node: AttributeSyntax, providingPeersOf declaration: some DeclSyntaxProtocol, in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        func diagnose(_ message: String) {
            context.diagnose(Diagnostic(node: node, message: SharedDiagnostic(message: message)))
        }
        guard let function = declaration.as(FunctionDeclSyntax.self) else {
            diagnose("@ReadOnly marks a method of a @Shared type")
            return []
        }
        let enclosing = context.lexicalContext.first { $0.is(ClassDeclSyntax.self) || $0.is(StructDeclSyntax.self) || $0.is(ExtensionDeclSyntax.self) }
        let attributes = enclosing?.as(ClassDeclSyntax.self)?.attributes ?? enclosing?.as(StructDeclSyntax.self)?.attributes
        let shared = attributes?.contains { attribute in
            guard let name = attribute.as(AttributeSyntax.self)?.attributeName.trimmedDescription else { return false }
            return name == "Shared" || name.hasSuffix(".Shared")
        }
        if shared != true {
            diagnose("@ReadOnly marks a method of a @Shared type; \(function.name.text) is not in one (an extension's methods are not shipped)")
        }
        return []
    }
}
