import SwiftDiagnostics
import SwiftSyntax
import SwiftSyntaxBuilder
import SwiftSyntaxMacros

/// `@SharedKey`: the proxy a stored property holds gets the property's name as its key, as
/// the paper's `@Shared` fields do.
///
/// `@SharedKey var counter = AtomicLong()` becomes a computed property over a stored
/// `_counter`, whose init accessor names the proxy "counter"; `@SharedKey("hits")` names
/// it "hits". The property's type is its annotation, else the initializer's:
/// `AtomicLong(...)`, `SharedMap<String, Int>(...)` or `GlobalCentroids.Shared(...)`.
///
/// (Not `@Shared` itself: a macro with an accessor role cannot be attached to a type, and
/// `@Shared` on a type makes it a shared object type.)
public struct SharedKeyExpansion: AccessorMacro, PeerMacro {
    /// Expands the attribute (see the macro's declaration in CrucialClient).
    public static func expansion(
        of node: AttributeSyntax, providingAccessorsOf declaration: some DeclSyntaxProtocol, in context: some MacroExpansionContext
    ) throws -> [AccessorDeclSyntax] {
        guard let property = Property(declaration, node, context) else { return [] }
        return [
            """
            @storageRestrictions(initializes: _\(raw: property.name))
            init(initialValue) { _\(raw: property.name) = initialValue.keyed(\(raw: literal(property.key))) }
            """,
            "get { _\(raw: property.name) }",
            "set { _\(raw: property.name) = newValue.keyed(\(raw: literal(property.key))) }",
        ]
    }

    /// Expands the attribute (see the macro's declaration in CrucialClient).
    public static func expansion(
        of node: AttributeSyntax, providingPeersOf declaration: some DeclSyntaxProtocol, in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        // The accessor expansion reports problems; only a well-formed property gets storage.
        guard let property = Property(declaration, node, nil as (any MacroExpansionContext)?) else { return [] }
        return ["private var _\(raw: property.name): \(raw: property.type)"]
    }

    /// The type an initializer call makes: `AtomicLong(...)`, `SharedMap<K, V>(...)`,
    /// `T.Shared(...)` (not `.init(...)` nor a function's result, which need an annotation).
    static func typeName(_ called: ExprSyntax) -> String? {
        if let reference = called.as(DeclReferenceExprSyntax.self), reference.baseName.text.first?.isUppercase == true {
            return reference.trimmedDescription
        }
        if let generic = called.as(GenericSpecializationExprSyntax.self), typeName(generic.expression) != nil {
            return generic.trimmedDescription
        }
        if let member = called.as(MemberAccessExprSyntax.self), member.declName.baseName.text.first?.isUppercase == true,
            let base = member.base, typeName(base) != nil
        {
            return member.trimmedDescription
        }
        return nil
    }

    struct Property {
        var name: String
        var type: String
        var key: String

        init?(_ declaration: some DeclSyntaxProtocol, _ node: AttributeSyntax, _ context: (any MacroExpansionContext)?) {
            func report(_ at: some SyntaxProtocol, _ message: String) {
                context?.diagnose(Diagnostic(node: Syntax(at), message: SharedDiagnostic(message: message)))
            }
            guard let variable = declaration.as(VariableDeclSyntax.self), variable.bindings.count == 1,
                let binding = variable.bindings.first, let identifier = binding.pattern.as(IdentifierPatternSyntax.self)
            else { report(node, "@SharedKey applies to one stored property"); return nil }
            guard variable.bindingSpecifier.tokenKind == .keyword(.var) else {
                report(variable.bindingSpecifier, "@SharedKey properties must be `var` (Swift's init accessors need it); the proxy itself never changes"); return nil
            }
            guard binding.accessorBlock == nil else { report(binding, "@SharedKey applies to a stored property, not a computed one"); return nil }
            name = identifier.identifier.text
            key = name
            if let argument = node.arguments?.as(LabeledExprListSyntax.self)?.first {
                guard let string = argument.expression.as(StringLiteralExprSyntax.self), string.segments.count == 1,
                    let segment = string.segments.first?.as(StringSegmentSyntax.self), !segment.content.text.isEmpty
                else { report(argument, "@SharedKey takes a non-empty string literal"); return nil }
                key = segment.content.text
            }
            if let annotation = binding.typeAnnotation {
                type = annotation.type.trimmedDescription
            } else if let call = binding.initializer?.value.as(FunctionCallExprSyntax.self),
                let called = SharedKeyExpansion.typeName(call.calledExpression)
            {
                type = called
            } else {
                report(binding, "@SharedKey cannot tell the property's type: write `var \(name): AtomicLong = ...`"); return nil
            }
        }
    }
}
