import SwiftDiagnostics
import SwiftSyntax
import SwiftSyntaxBuilder
import SwiftSyntaxMacros

/// `@Shared`: the dispatch table of ``SharedType`` and the client proxy `T.Shared`.
public struct SharedExpansion: MemberMacro, ExtensionMacro {
    /// Expands the attribute (see the macro's declaration in CrucialClient).
    public static func expansion(
        of node: AttributeSyntax, providingMembersOf declaration: some DeclGroupSyntax,
        conformingTo protocols: [TypeSyntax], in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        SharedTarget(declaration, attribute: node, diagnose: context.reportError)?.members() ?? []
    }

    /// Expands the attribute (see the macro's declaration in CrucialClient).
    public static func expansion(
        of node: AttributeSyntax, attachedTo declaration: some DeclGroupSyntax, providingExtensionsOf type: some TypeSyntaxProtocol,
        conformingTo protocols: [TypeSyntax], in context: some MacroExpansionContext
    ) throws -> [ExtensionDeclSyntax] {
        // The member expansion reports what is wrong; a type it refuses gets no conformance either.
        guard !protocols.isEmpty, SharedTarget(declaration, attribute: node, diagnose: { _, _ in }) != nil else { return [] }
        return try conformances(of: type, protocols)
    }
}

extension MacroExpansionContext {
    /// Reports `message` at a node as an error of this package's macros.
    func reportError(_ node: Syntax, _ message: String) {
        diagnose(Diagnostic(node: node, message: SharedDiagnostic(message: message)))
    }
}

/// `extension T: P, Q {}` for the conformances the compiler asks a macro for (none asked: none).
func conformances(of type: some TypeSyntaxProtocol, _ protocols: [TypeSyntax]) throws -> [ExtensionDeclSyntax] {
    guard !protocols.isEmpty else { return [] }
    return [try ExtensionDeclSyntax("extension \(type.trimmed): \(raw: protocols.map(\.trimmedDescription).joined(separator: ", ")) {}")]
}

/// A diagnostic with a message a user can act on.
struct SharedDiagnostic: DiagnosticMessage {
    let message: String
    var diagnosticID: MessageID { MessageID(domain: "CrucialMacros", id: "shared") }
    var severity: DiagnosticSeverity { .error }
}

/// One method to ship.
struct ShippedMethod {
    struct Parameter {
        var label: String?  // nil = `_`
        var name: String
        var type: String
    }

    var name: String
    var parameters: [Parameter]
    /// The parameter clause as written (labels, types, defaults), for the proxy.
    var signature: String
    var returnType: String?
    var throwsErrors: Bool
    var isRead: Bool
    var access: String
}

/// What `@Shared` is attached to, checked.
struct SharedTarget {
    var typeName: String
    var wireName: String
    var access: String
    var methods: [ShippedMethod]
    /// Each stored `var` declared with a value (`var merges = 0`, `var seen: Set<String> = []`):
    /// its name and the value as written, with its type when one is written. Empty when the
    /// type decodes itself (its own `CodingKeys` or `init(from:)`).
    var defaults: [(name: String, value: String, type: String?)] = []

    init?(_ declaration: some DeclGroupSyntax, attribute: AttributeSyntax, diagnose: (Syntax, String) -> Void) {
        var failed = false
        func fail(_ node: some SyntaxProtocol, _ message: String) {
            diagnose(Syntax(node), message)
            failed = true
        }
        let isStruct: Bool
        let name: TokenSyntax
        let generics: GenericParameterClauseSyntax?
        if let c = declaration.as(ClassDeclSyntax.self) {
            guard c.modifiers.contains(where: { $0.name.tokenKind == .keyword(.final) }) else {
                fail(c.name, "@Shared classes must be final: mark \(c.name.text) final (its state is encoded and decoded as a whole)")
                return nil
            }
            (isStruct, name, generics) = (false, c.name, c.genericParameterClause)
        } else if let s = declaration.as(StructDeclSyntax.self) {
            (isStruct, name, generics) = (true, s.name, s.genericParameterClause)
        } else {
            fail(attribute, "@Shared applies to a final class or a struct")
            return nil
        }
        if let generics { fail(generics, "@Shared types cannot be generic"); return nil }
        typeName = name.text
        wireName = typeName
        if let arguments = attribute.arguments?.as(LabeledExprListSyntax.self),
            let nameArgument = arguments.first(where: { $0.label?.text == "name" })
        {
            guard let literal = nameArgument.expression.as(StringLiteralExprSyntax.self), literal.segments.count == 1,
                let segment = literal.segments.first?.as(StringSegmentSyntax.self), !segment.content.text.isEmpty
            else { fail(nameArgument, "@Shared(name:) takes a non-empty string literal"); return nil }
            wireName = segment.content.text
        }
        access = Self.access(declaration.modifiers) ?? ""

        var methods: [ShippedMethod] = []
        for member in declaration.memberBlock.members {
            guard let f = member.decl.as(FunctionDeclSyntax.self) else { continue }
            let modifiers = f.modifiers.map(\.name.tokenKind)
            if modifiers.contains(.keyword(.static)) || modifiers.contains(.keyword(.class)) { continue }
            if modifiers.contains(.keyword(.private)) || modifiers.contains(.keyword(.fileprivate)) { continue }
            let method = f.name.text
            if f.signature.effectSpecifiers?.asyncSpecifier != nil {
                fail(f.name, "\(typeName).\(method) is async: shipped methods run under the object's lock and must be synchronous (make it private to keep it local)")
                continue
            }
            if f.genericParameterClause != nil {
                fail(f.name, "\(typeName).\(method) is generic: a shipped method needs concrete argument types")
                continue
            }
            let markedRead = f.attributes.contains { attribute in
                guard let name = attribute.as(AttributeSyntax.self)?.attributeName.trimmedDescription else { return false }
                return name == "ReadOnly" || name.hasSuffix(".ReadOnly")
            }
            if markedRead, isStruct, modifiers.contains(.keyword(.mutating)) {
                fail(f.name, "\(typeName).\(method) is mutating and marked @ReadOnly: a read must not change the state (drop one of them)")
                continue
            }
            if methods.contains(where: { $0.name == method }) {
                fail(f.name, "\(typeName) has two methods named \(method): shipped methods are called by name, so rename one (or make it private)")
                continue
            }
            var parameters: [ShippedMethod.Parameter] = []
            for p in f.signature.parameterClause.parameters {
                if p.ellipsis != nil {
                    fail(p, "\(typeName).\(method): variadic parameters cannot be shipped; take an array")
                    continue
                }
                if let attributed = p.type.as(AttributedTypeSyntax.self), !attributed.specifiers.isEmpty {
                    fail(p, "\(typeName).\(method): inout or borrowing parameters cannot be shipped")
                    continue
                }
                if p.type.is(SomeOrAnyTypeSyntax.self) || p.type.is(FunctionTypeSyntax.self) {
                    fail(p, "\(typeName).\(method): parameter types must be concrete Codable types")
                    continue
                }
                let first = p.firstName.text
                let label = first == "_" ? nil : first
                parameters.append(.init(label: label, name: p.secondName?.text ?? first, type: p.type.trimmedDescription))
            }
            var returnType = f.signature.returnClause?.type.trimmedDescription
            if returnType == "Void" || returnType == "()" { returnType = nil }
            methods.append(
                ShippedMethod(
                    name: method, parameters: parameters, signature: f.signature.parameterClause.trimmedDescription,
                    returnType: returnType, throwsErrors: f.signature.effectSpecifiers?.throwsClause != nil,
                    isRead: markedRead || (isStruct && !modifiers.contains(.keyword(.mutating))), access: Self.access(f.modifiers) ?? ""))
        }
        if failed { return nil }
        self.methods = methods
        self.defaults = Self.defaultedProperties(declaration.memberBlock)
    }

    /// The stored properties whose declared value a state without them decodes with (see
    /// ``defaults``): `var`s with an initial value, neither static, lazy, wrapped nor
    /// computed. A type that decodes itself gets none: its keys may not be its names.
    static func defaultedProperties(_ members: MemberBlockSyntax) -> [(name: String, value: String, type: String?)] {
        let decodesItself = members.members.contains { member in
            if let e = member.decl.as(EnumDeclSyntax.self) { return e.name.text == "CodingKeys" }
            if let i = member.decl.as(InitializerDeclSyntax.self) {
                return i.signature.parameterClause.parameters.first?.firstName.text == "from"
            }
            if let t = member.decl.as(TypeAliasDeclSyntax.self) { return t.name.text == "CodingKeys" }
            return false
        }
        if decodesItself { return [] }
        var found: [(name: String, value: String, type: String?)] = []
        for member in members.members {
            guard let v = member.decl.as(VariableDeclSyntax.self), v.bindingSpecifier.tokenKind == .keyword(.var), v.attributes.isEmpty
            else { continue }
            let modifiers = v.modifiers.map(\.name.tokenKind)
            if modifiers.contains(.keyword(.static)) || modifiers.contains(.keyword(.class)) || modifiers.contains(.keyword(.lazy)) { continue }
            for binding in v.bindings {
                guard let name = binding.pattern.as(IdentifierPatternSyntax.self)?.identifier.text,
                    let value = binding.initializer?.value.trimmedDescription
                else { continue }
                if let accessors = binding.accessorBlock, case .getter = accessors.accessors { continue }
                if case .accessors(let list) = binding.accessorBlock?.accessors,
                    list.contains(where: { [.keyword(.get), .keyword(.set), .keyword(._read), .keyword(._modify)].contains($0.accessorSpecifier.tokenKind) })
                {
                    continue
                }
                let type = binding.typeAnnotation?.type
                // An implicitly unwrapped Optional decodes as an Optional: a missing key is nil.
                if let type, type.is(ImplicitlyUnwrappedOptionalTypeSyntax.self) { continue }
                found.append((name: name.hasPrefix("`") ? String(name.dropFirst().dropLast()) : name, value: value, type: type?.trimmedDescription))
            }
        }
        return found
    }

    static func access(_ modifiers: DeclModifierListSyntax) -> String? {
        for m in modifiers {
            switch m.name.tokenKind {
            case .keyword(.public), .keyword(.open): return "public "
            case .keyword(.package): return "package "
            case .keyword(.internal): return "internal "
            default: continue
            }
        }
        return nil
    }

    /// The method table as one canonical text, what the wire sees of it: a line per method
    /// in name order, with its parameter and result types (as written, without spaces) and
    /// its kind, as in `add(Int,Int)->Int write`. Labels, bodies and the state are not in it.
    var methodTable: String {
        methods.sorted { $0.name < $1.name }.map { m in
            let parameters = m.parameters.map { $0.type.filter { !$0.isWhitespace } }.joined(separator: ",")
            let result = (m.returnType ?? "Void").filter { !$0.isWhitespace }
            return "\(m.name)(\(parameters))->\(result) \(m.isRead ? "read" : "write")"
        }.joined(separator: "\n")
    }

    /// The type's version as clients and servers compare it: FNV-1a (64 bits) of
    /// ``methodTable``, in hex.
    var fingerprint: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in methodTable.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    func members() -> [DeclSyntax] {
        let kinds = methods.map { "\(literal($0.name)): .\($0.isRead ? "read" : "write")" }
        var dispatch = [
            "\(access)static func crucialInvoke(_ object: inout \(typeName), _ call: CrucialCore.SharedCall) throws -> CrucialCore.Value {",
            "    switch call.method {",
        ]
        for m in methods {
            dispatch.append("    case \(literal(m.name)):")
            dispatch.append("        try call.arity(\(m.parameters.count))")
            for (i, p) in m.parameters.enumerated() {
                dispatch.append("        let a\(i) = try call.argument(\(i), \(literal(p.name)), as: (\(p.type)).self)")
            }
            let arguments = m.parameters.enumerated().map { i, p in p.label.map { "\($0): a\(i)" } ?? "a\(i)" }.joined(separator: ", ")
            let invocation = "\(m.throwsErrors ? "try " : "")object.\(m.name)(\(arguments))"
            if m.returnType == nil {
                dispatch += ["        \(invocation)", "        return .null"]
            } else {
                dispatch.append("        return try call.result(\(invocation))")
            }
        }
        dispatch += ["    default:", "        throw call.unknownMethod(crucialMethods.keys)", "    }", "}"]

        var proxy = [
            "/// The client-side stand-in for a shared `\(typeName)`: each method runs on the object's server.",
            "\(access)struct Shared: SharedObjectProxy {",
            "    \(access)typealias Object = \(typeName)",
            "    \(access)let handle: SharedObjectHandle",
            "    \(access)init(handle: SharedObjectHandle) { self.handle = handle }",
        ]
        for m in methods {
            let args = m.parameters.map { "try Self.crucialArgument(\($0.name), \(literal($0.name)))" }.joined(separator: ", ")
            let call = "try await crucialCall(\(literal(m.name)), [\(args)], readOnly: \(m.isRead))"
            proxy += ["", "    /// Runs `\(typeName).\(m.name)` on the object, on its server."]
            if let result = m.returnType {
                proxy += [
                    "    @discardableResult",
                    "    \(m.access)func \(m.name)\(m.signature) async throws -> \(result) {",
                    "        try Self.crucialResult(\(call), \(literal(m.name)), as: (\(result)).self)",
                ]
            } else {
                proxy += ["    \(m.access)func \(m.name)\(m.signature) async throws {", "        _ = \(call)"]
            }
            proxy.append("    }")
        }
        proxy.append("}")
        var declarations: [DeclSyntax] = [
            "\(raw: access)static var crucialTypeName: String { \(raw: literal(wireName)) }",
            "\(raw: access)static var crucialMethods: [String: CrucialCore.MethodKind] { [\(raw: kinds.isEmpty ? ":" : kinds.joined(separator: ", "))] }",
            "\(raw: access)static var crucialFingerprint: String { \(raw: literal(fingerprint)) }",
            DeclSyntax(stringLiteral: dispatch.joined(separator: "\n")),
            DeclSyntax(stringLiteral: proxy.joined(separator: "\n")),
        ]
        if !defaults.isEmpty {
            // An Optional's default is never filled in (`stateDefault` answers nil for one):
            // its missing key is the nil the synthesized encoding leaves out.
            let entries = defaults.map { d in
                let value = d.type.map { "(\(d.value)) as \($0)" } ?? "(\(d.value))"
                return "\(literal(d.name)): { try CrucialCore.SharedStateDefault.value(\(value)) }"
            }
            declarations.append(
                DeclSyntax(
                    stringLiteral: [
                        "\(access)static var crucialStateDefaults: [String: @Sendable () throws -> CrucialCore.Value?] {",
                        "    [\(entries.joined(separator: ", "))]",
                        "}",
                    ].joined(separator: "\n")))
        }
        return declarations
    }
}

/// A Swift string literal for `s`.
func literal(_ s: String) -> String {
    var out = "\""
    for ch in s.unicodeScalars {
        switch ch {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(ch)
        }
    }
    return out + "\""
}
