import CrucialMacrosImplementation
import SwiftCompilerPlugin
import SwiftSyntax
import SwiftSyntaxMacros

// The macros CrucialClient declares (`#externalMacro(module: "CrucialMacros", ...)`): each
// forwards to its expansion in CrucialMacrosImplementation, which the tests drive directly.

@main
struct CrucialMacrosPlugin: CompilerPlugin {
    let providingMacros: [any Macro.Type] = [SharedMacro.self, SharedKeyMacro.self, ReadOnlyMacro.self, BuiltinMethodsMacro.self]
}

/// `@Shared`: see ``CrucialMacrosImplementation/SharedExpansion``.
public struct SharedMacro: MemberMacro, ExtensionMacro {
    /// The members: the dispatch table and the proxy.
    public static func expansion(
        of node: AttributeSyntax, providingMembersOf declaration: some DeclGroupSyntax,
        conformingTo protocols: [TypeSyntax], in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        try SharedExpansion.expansion(of: node, providingMembersOf: declaration, conformingTo: protocols, in: context)
    }

    /// The conformances.
    public static func expansion(
        of node: AttributeSyntax, attachedTo declaration: some DeclGroupSyntax, providingExtensionsOf type: some TypeSyntaxProtocol,
        conformingTo protocols: [TypeSyntax], in context: some MacroExpansionContext
    ) throws -> [ExtensionDeclSyntax] {
        try SharedExpansion.expansion(of: node, attachedTo: declaration, providingExtensionsOf: type, conformingTo: protocols, in: context)
    }
}

/// `@SharedKey`: see ``CrucialMacrosImplementation/SharedKeyExpansion``.
public struct SharedKeyMacro: AccessorMacro, PeerMacro {
    /// The property's accessors.
    public static func expansion(
        of node: AttributeSyntax, providingAccessorsOf declaration: some DeclSyntaxProtocol, in context: some MacroExpansionContext
    ) throws -> [AccessorDeclSyntax] {
        try SharedKeyExpansion.expansion(of: node, providingAccessorsOf: declaration, in: context)
    }

    /// The property's storage.
    public static func expansion(
        of node: AttributeSyntax, providingPeersOf declaration: some DeclSyntaxProtocol, in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        try SharedKeyExpansion.expansion(of: node, providingPeersOf: declaration, in: context)
    }
}

/// `@ReadOnly`: see ``CrucialMacrosImplementation/ReadOnlyExpansion``.
public struct ReadOnlyMacro: PeerMacro {
    /// Nothing: `@Shared` reads the attribute; this only checks where it is.
    public static func expansion(
        of node: AttributeSyntax, providingPeersOf declaration: some DeclSyntaxProtocol, in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        try ReadOnlyExpansion.expansion(of: node, providingPeersOf: declaration, in: context)
    }
}

/// `@BuiltinMethods` (CrucialCore's built-in types): see ``CrucialMacrosImplementation/BuiltinMethodsExpansion``.
public struct BuiltinMethodsMacro: MemberMacro, ExtensionMacro {
    /// The members: names, kinds, arity, encoding, decoding and signatures.
    public static func expansion(
        of node: AttributeSyntax, providingMembersOf declaration: some DeclGroupSyntax,
        conformingTo protocols: [TypeSyntax], in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        try BuiltinMethodsExpansion.expansion(of: node, providingMembersOf: declaration, conformingTo: protocols, in: context)
    }

    /// The conformance.
    public static func expansion(
        of node: AttributeSyntax, attachedTo declaration: some DeclGroupSyntax, providingExtensionsOf type: some TypeSyntaxProtocol,
        conformingTo protocols: [TypeSyntax], in context: some MacroExpansionContext
    ) throws -> [ExtensionDeclSyntax] {
        try BuiltinMethodsExpansion.expansion(of: node, attachedTo: declaration, providingExtensionsOf: type, conformingTo: protocols, in: context)
    }
}
