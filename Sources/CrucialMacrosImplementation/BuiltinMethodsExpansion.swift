import SwiftDiagnostics
import SwiftSyntax
import SwiftSyntaxBuilder
import SwiftSyntaxMacros

/// `@BuiltinMethods` (CrucialCore's built-in types): from an enum whose cases are a type's
/// methods, the method names, their kinds and arity, the client's encoding of a call, the
/// server's decoding of one, and the signatures docs/PROTOCOL.md's table is made of.
public struct BuiltinMethodsExpansion: MemberMacro, ExtensionMacro {
    /// The members (see the macro's declaration in CrucialCore).
    public static func expansion(
        of node: AttributeSyntax, providingMembersOf declaration: some DeclGroupSyntax,
        conformingTo protocols: [TypeSyntax], in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        MethodFamily(declaration, diagnose: context.reportError)?.members() ?? []
    }

    /// The conformance to `BuiltinMethods`.
    public static func expansion(
        of node: AttributeSyntax, attachedTo declaration: some DeclGroupSyntax, providingExtensionsOf type: some TypeSyntaxProtocol,
        conformingTo protocols: [TypeSyntax], in context: some MacroExpansionContext
    ) throws -> [ExtensionDeclSyntax] {
        guard !protocols.isEmpty, MethodFamily(declaration, diagnose: { _, _ in }) != nil else { return [] }
        return try conformances(of: type, protocols)
    }
}

/// The enum's cases, read.
struct MethodFamily {
    struct Parameter {
        var label: String
        var type: String
        var isOptional: Bool
    }

    enum Method {
        /// A method: its kind's expression (`.read`, `MethodKind(.write, blocks: true)`) and answer.
        case method(name: String, parameters: [Parameter], kind: String, answers: String)
        /// Every method of another family, by a case with one unlabelled value of it.
        case family(name: String, type: String)
    }

    static let kinds: [String: String] = [
        "read": ".read", "write": ".write", "shrink": ".shrink",
        "blocking read": "MethodKind(.read, blocks: true)", "blocking write": "MethodKind(.write, blocks: true)",
        "blocking shrink": "MethodKind(.shrink, blocks: true)",
    ]

    var access: String
    var methods: [Method] = []

    init?(_ declaration: some DeclGroupSyntax, diagnose: (Syntax, String) -> Void) {
        guard let e = declaration.as(EnumDeclSyntax.self) else {
            diagnose(Syntax(declaration), "@BuiltinMethods applies to an enum whose cases are a type's methods")
            return nil
        }
        access = SharedTarget.access(e.modifiers) ?? ""
        var failed = false
        for member in e.memberBlock.members {
            guard let c = member.decl.as(EnumCaseDeclSyntax.self) else { continue }
            guard c.elements.count == 1, let element = c.elements.first else {
                diagnose(Syntax(c), "declare one method per case, each with its doc comment")
                failed = true
                continue
            }
            let name = element.name.text
            let values = element.parameterClause?.parameters.map { $0 } ?? []
            if values.count == 1, values[0].firstName == nil {
                methods.append(.family(name: name, type: values[0].type.trimmedDescription))
                continue
            }
            var parameters: [Parameter] = []
            for value in values {
                guard let label = value.firstName?.text, label != "_" else {
                    diagnose(Syntax(value), "label every argument of \(name): the label is the parameter's name in the reference")
                    failed = true
                    continue
                }
                let type = value.type.trimmedDescription
                let isOptional = value.type.is(OptionalTypeSyntax.self) || type.hasPrefix("Optional<")
                if !isOptional, parameters.last?.isOptional == true {
                    diagnose(Syntax(value), "\(name): \(label) follows an optional argument; optional arguments come last")
                    failed = true
                }
                parameters.append(Parameter(label: label, type: type, isOptional: isOptional))
            }
            let doc = Self.docComment(c.leadingTrivia)
            guard let colon = doc.firstIndex(of: ":"), let kind = Self.kinds[doc[..<colon].trimmingSpaces] else {
                diagnose(
                    Syntax(c),
                    "\(name): begin its doc comment with its kind and what it answers, \"/// write: the value before\" (kinds: \(Self.kinds.keys.sorted().joined(separator: ", ")))"
                )
                failed = true
                continue
            }
            let answers = doc[doc.index(after: colon)...].trimmingSpaces
            methods.append(.method(name: name, parameters: parameters, kind: kind, answers: answers))
        }
        if methods.isEmpty, !failed { diagnose(Syntax(e.name), "@BuiltinMethods needs at least one case") }
        if failed || methods.isEmpty { return nil }
    }

    /// The `///` lines before a case, joined into one line.
    static func docComment(_ trivia: Trivia) -> String {
        trivia.compactMap { piece -> String? in
            guard case .docLineComment(let line) = piece else { return nil }
            return String(line.dropFirst(3)).trimmingSpaces
        }.joined(separator: " ")
    }

    private var hasFamily: Bool { methods.contains { if case .family = $0 { true } else { false } } }

    func members() -> [DeclSyntax] {
        [nameEnum(), nameProperty(), argumentsProperty(), decoder(), signatureFunction(), kindFunction(), arityFunction()]
    }

    /// `case .name` or, for a family, `case .name(let inner)`.
    private func pattern(_ m: Method, binding: String = "inner") -> String {
        switch m {
        case .method(let name, _, _, _): ".`\(name)`"
        case .family(let name, _): ".`\(name)`(let \(binding))"
        }
    }

    private func nameEnum() -> DeclSyntax {
        guard hasFamily else {
            let cases = methods.map { m -> String in
                guard case .method(let name, _, _, _) = m else { return "" }
                return "    case `\(name)`"
            }
            return """
                /// The methods by wire name.
                \(raw: access)enum Name: String, BuiltinMethodName {
                \(raw: cases.joined(separator: "\n"))
                }
                """
        }
        var cases: [String] = [], parse: [String] = [], raws: [String] = [], all: [String] = []
        for m in methods {
            switch m {
            case .method(let name, _, _, _):
                cases.append("    case `\(name)`")
                parse.append("        case \"\(name)\": self = .`\(name)`")
                raws.append("        case .`\(name)`: \"\(name)\"")
                all.append("[.`\(name)`]")
            case .family(let name, let type):
                cases.append("    case `\(name)`(\(type).Name)")
                raws.append("        case .`\(name)`(let inner): inner.rawValue")
                all.append("\(type).Name.allCases.map { .`\(name)`($0) }")
            }
        }
        let families = methods.compactMap { m -> String? in
            guard case .family(let name, let type) = m else { return nil }
            return "        if let inner = \(type).Name(rawValue: rawValue) { self = .`\(name)`(inner); return }"
        }
        return """
            /// The methods by wire name.
            \(raw: access)enum Name: BuiltinMethodName {
            \(raw: cases.joined(separator: "\n"))

                \(raw: access)init?(rawValue: String) {
            \(raw: families.joined(separator: "\n"))
                    switch rawValue {
            \(raw: parse.joined(separator: "\n"))
                    default: return nil
                    }
                }

                \(raw: access)var rawValue: String {
                    switch self {
            \(raw: raws.joined(separator: "\n"))
                    }
                }

                \(raw: access)static var allCases: [Name] {
                    \(raw: all.joined(separator: " + "))
                }
            }
            """
    }

    /// A `switch` over the calls or the names, one line per method.
    private func switchOver(_ subject: String, _ line: (Method) -> String) -> String {
        "switch \(subject) {\n" + methods.map { "case \(pattern($0)): \(line($0))" }.joined(separator: "\n") + "\n}"
    }

    private func nameProperty() -> DeclSyntax {
        let body = switchOver("self") { m in
            switch m {
            case .method(let name, _, _, _): ".`\(name)`"
            case .family(let name, _): ".`\(name)`(inner.name)"
            }
        }
        return """
            /// The method this call is of.
            \(raw: access)var name: Name {
            \(raw: body)
            }
            """
    }

    private func argumentsProperty() -> DeclSyntax {
        let body = methods.map { m -> String in
            switch m {
            case .family(let name, _):
                return "case .`\(name)`(let inner): inner.arguments"
            case .method(let name, let parameters, _, _):
                guard !parameters.isEmpty else { return "case .`\(name)`: []" }
                let bindings = parameters.indices.map { "let a\($0)" }.joined(separator: ", ")
                let values = "[" + parameters.indices.map { "a\($0).wireValue" }.joined(separator: ", ") + "]"
                let required = parameters.filter { !$0.isOptional }.count
                let list = required < parameters.count ? "Self.trimmed(\(values), required: \(required))" : values
                return "case .`\(name)`(\(bindings)): \(list)"
            }
        }
        return """
            /// The arguments as a client sends them.
            \(raw: access)var arguments: [Value] {
            switch self {
            \(raw: body.joined(separator: "\n"))
            }
            }
            """
    }

    private func decoder() -> DeclSyntax {
        let body = switchOver("name") { m in
            switch m {
            case .family(let name, let type):
                return "self = .`\(name)`(try \(type)(inner, arguments))"
            case .method(let name, let parameters, _, _):
                guard !parameters.isEmpty else { return "self = .`\(name)`" }
                let reads = parameters.enumerated().map { i, p in "\(p.label): try arguments.read(\(i), \"\(p.label)\")" }
                return "self = .`\(name)`(\(reads.joined(separator: ", ")))"
            }
        }
        return """
            /// A call of `name` as a server reads it (its arguments counted already).
            \(raw: access)init(_ name: Name, _ arguments: SharedCall) throws(CrucialError) {
            \(raw: body)
            }
            """
    }

    private func signatureFunction() -> DeclSyntax {
        let body = switchOver("name") { m in
            switch m {
            case .family(_, let type):
                return "\(type).signature(of: inner)"
            case .method(_, let parameters, let kind, let answers):
                let list = parameters.map { "MethodSignature.Parameter(\"\($0.label)\", (\($0.type)).self)" }.joined(separator: ", ")
                return "MethodSignature(\(kind), [\(list)], answers: \(StringLiteralExprSyntax(content: answers).description))"
            }
        }
        return """
            /// The method's kind, parameters and answer.
            \(raw: access)static func signature(of name: Name) -> MethodSignature {
            \(raw: body)
            }
            """
    }

    private func kindFunction() -> DeclSyntax {
        let body = switchOver("name") { m in
            switch m {
            case .family(_, let type): "\(type).kind(of: inner)"
            case .method(_, _, let kind, _): kind
            }
        }
        return """
            /// The method's kind.
            \(raw: access)static func kind(of name: Name) -> MethodKind {
            \(raw: body)
            }
            """
    }

    private func arityFunction() -> DeclSyntax {
        let body = switchOver("name") { m in
            switch m {
            case .family(_, let type): return "\(type).arity(of: inner)"
            case .method(_, let parameters, _, _):
                let required = parameters.firstIndex(where: \.isOptional) ?? parameters.count
                return "\(required)...\(parameters.count)"
            }
        }
        return """
            /// How many arguments a call of the method must pass, and may.
            \(raw: access)static func arity(of name: Name) -> ClosedRange<Int> {
            \(raw: body)
            }
            """
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces.
    var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
