/// The built-in object types, each with the enum that declares its methods (``family``): one
/// case per method, its wire name, parameters, kind and answer (``BuiltinMethods``). The
/// server's objects switch over these enums' cases (exhaustively: a method added there does
/// not build until the server runs it) after decoding a call with them; the client's proxies
/// encode their calls with them, so a name, an argument or a kind cannot differ between the two.
///
/// docs/PROTOCOL.md describes each method's arguments, result and errors.
package enum BuiltinType: String, CaseIterable, Sendable {
    case atomicInt = "AtomicInt"
    case atomicLong = "AtomicLong"
    case atomicBoolean = "AtomicBoolean"
    case atomicDouble = "AtomicDouble"
    case atomicReference = "AtomicReference"
    case atomicByteArray = "AtomicByteArray"
    case atomicDoubleArray = "AtomicDoubleArray"
    case atomicMatrix = "AtomicMatrix"
    case sharedList = "SharedList"
    case sharedSet = "SharedSet"
    case sharedMap = "SharedMap"
    case sharedSortedMap = "SharedSortedMap"
    case cyclicBarrier = "CyclicBarrier"
    case semaphore = "Semaphore"
    case countDownLatch = "CountDownLatch"
    case sharedFuture = "SharedFuture"

    /// The name in ``ObjectRef/type``.
    package var typeName: String { rawValue }

    /// The enum that declares the type's methods.
    package var family: any BuiltinMethods.Type {
        switch self {
        case .atomicInt, .atomicLong: AtomicIntegerMethod.self
        case .atomicBoolean: AtomicBooleanMethod.self
        case .atomicReference: AtomicReferenceMethod.self
        case .atomicDouble: AtomicDoubleMethod.self
        case .atomicByteArray: ByteArrayMethod.self
        case .atomicDoubleArray: DoubleArrayMethod.self
        case .atomicMatrix: MatrixMethod.self
        case .sharedList: ListMethod.self
        case .sharedSet: SetMethod.self
        case .sharedMap: MapMethod.self
        case .sharedSortedMap: SortedMapMethod.self
        case .cyclicBarrier: BarrierMethod.self
        case .semaphore: SemaphoreMethod.self
        case .countDownLatch: LatchMethod.self
        case .sharedFuture: FutureMethod.self
        }
    }

    /// The kind of `method` (nil: the type has no such method), without building a table:
    /// clients ask for each pipelined call.
    package func kind(of method: String) -> MethodKind? { family.kind(named: method) }

    /// Every method of the type, by wire name (for the reference, `crucial types` and tests).
    package var methods: [String: MethodSignature] { family.table }

    /// The `Create.initial` the type takes (also the form of its state in `GetObject`, with
    /// the exceptions said here), for docs/PROTOCOL.md.
    package var initialState: String {
        switch self {
        case .atomicInt: "int that fits in 32 bits (null: 0)"
        case .atomicLong: "int (null: 0)"
        case .atomicBoolean: "bool (null: false)"
        case .atomicDouble: "a number (null: 0.0)"
        case .atomicReference: "any value (null: null)"
        case .atomicByteArray: "bytes, or an int: that many zero bytes"
        case .atomicDoubleArray: "doubles, or an int: that many zeros"
        case .atomicMatrix: "record {rows, cols, data?}: data as doubles, rows × cols row after row (absent: zeros)"
        case .sharedList, .sharedSet: "list of the elements (null: empty)"
        case .sharedMap, .sharedSortedMap: "list of [key, value] pairs (null: empty)"
        case .cyclicBarrier: "int: the number of parties, ≥ 1; another number for an existing barrier is BAD_INITIAL_STATE"
        case .semaphore: "int: the permits, or record {permits, ownerless} (ownerless: permits belong to no client)"
        case .countDownLatch: "int: the count, ≥ 0"
        case .sharedFuture: "null: not set (its state in `GetObject`: record {value} once set)"
        }
    }

    /// Synchronization objects park calls and arm timers (their size does not change with calls).
    package var isSynchronizer: Bool {
        switch self {
        case .cyclicBarrier, .semaphore, .countDownLatch, .sharedFuture: true
        default: false
        }
    }
}

/// A method's kind, parameters and answer. A parameter that may be left out (with every one
/// after it) shows with a trailing `?`.
package struct MethodSignature: Sendable, Equatable {
    /// One parameter: its name and its form on the wire (``WireArgument/wireName``).
    package struct Parameter: Sendable, Equatable {
        package let name: String
        package let type: String
        package let isOptional: Bool

        package init<T: WireArgument>(_ name: String, _ type: T.Type) {
            self.name = name
            self.type = T.wireName
            self.isOptional = T.isOptional
        }
    }

    package let kind: MethodKind
    package let parameters: [Parameter]
    /// What a call answers, for docs/PROTOCOL.md.
    package let result: String

    package init(_ kind: MethodKind, _ parameters: [Parameter], answers result: String) {
        self.kind = kind
        self.parameters = parameters
        self.result = result
    }

    /// How many arguments a call must pass, and may.
    package var arity: ClosedRange<Int> { (parameters.firstIndex(where: \.isOptional) ?? parameters.count)...parameters.count }

    /// The name of parameter `i`.
    package func parameter(_ i: Int) -> String { i < parameters.count ? parameters[i].name : "argument \(i + 1)" }

    /// `name(p1, p2?)`, for messages.
    package func display(_ name: String) -> String {
        "\(name)(\(parameters.map { $0.isOptional ? $0.name + "?" : $0.name }.joined(separator: ", ")))"
    }

    /// `name(p1: int, p2?: int)`, for the reference.
    package func typedDisplay(_ name: String) -> String {
        "\(name)(\(parameters.map { "\($0.name)\($0.isOptional ? "?" : ""): \($0.type)" }.joined(separator: ", ")))"
    }
}

/// A method's name in a family of methods (``BuiltinMethods/Name``).
package protocol BuiltinMethodName: RawRepresentable<String>, CaseIterable, Hashable, Sendable {}

/// The methods of one built-in type (or of a family of them): an enum with one case per
/// method, whose associated values are its arguments, declared with `@BuiltinMethods`. The
/// declaration is the only one: the macro makes the wire names, the kinds, the arity, the
/// client's encoding (``arguments``), the server's decoding (``init(_:_:)``) and the rows of
/// docs/PROTOCOL.md's table from it.
package protocol BuiltinMethods: Sendable {
    associatedtype Name: BuiltinMethodName
    /// The method this call is of.
    var name: Name { get }
    /// The arguments as a client sends them (trailing absent optional ones left out).
    var arguments: [Value] { get }
    /// A call of `name` as a server reads it from its arguments (their number already checked).
    init(_ name: Name, _ arguments: SharedCall) throws(CrucialError)
    /// The method's kind, parameters and answer.
    static func signature(of name: Name) -> MethodSignature
    /// The method's kind (without making the signature: servers ask on every call).
    static func kind(of name: Name) -> MethodKind
    /// How many arguments a call of the method must pass, and may.
    static func arity(of name: Name) -> ClosedRange<Int>
}

extension BuiltinMethods {
    /// Every method by wire name.
    package static var table: [String: MethodSignature] {
        Dictionary(uniqueKeysWithValues: Name.allCases.map { ($0.rawValue, signature(of: $0)) })
    }

    /// This call's kind.
    package var kind: MethodKind { Self.kind(of: name) }

    /// ``arity(of:)`` by wire name (nil: no such method).
    package static func arity(named method: String) -> ClosedRange<Int>? { Name(rawValue: method).map(arity(of:)) }

    /// ``kind(of:)`` by wire name (nil: no such method).
    package static func kind(named method: String) -> MethodKind? { Name(rawValue: method).map(kind(of:)) }

    /// `values` without the trailing nulls after the first `required` (absent optional arguments).
    package static func trimmed(_ values: [Value], required: Int) -> [Value] {
        var values = values
        while values.count > required, values.last == .null { values.removeLast() }
        return values
    }
}

/// Makes a ``BuiltinMethods`` enum's members from its cases. Each case is one method: its
/// name is the wire name, its labelled associated values the parameters (types conforming
/// to ``WireArgument``; optional ones last), and its doc comment says the kind and the answer,
/// `/// write: the value before` (kinds: `read`, `write`, `shrink`, and `blocking` before one
/// of them). A case with one unlabelled associated value of another such enum takes in all
/// of its methods (`case map(MapMethod)`).
@attached(member, names: named(Name), named(name), named(arguments), named(init), named(signature), named(kind), named(arity))
@attached(extension, conformances: BuiltinMethods)
package macro BuiltinMethods() = #externalMacro(module: "CrucialMacros", type: "BuiltinMethodsMacro")

// MARK: - Reference

extension BuiltinType {
    /// The table as Markdown: one row per type, its methods with their parameters and kinds.
    /// docs/PROTOCOL.md holds it between `<!-- builtin-methods -->` markers, and a test
    /// checks it is current (`crucial types --markdown` prints it).
    package static var markdownReference: String {
        var lines = [
            "| type | method(parameters) | kind | answers |",
            "| --- | --- | --- | --- |",
        ]
        for type in allCases {
            for (name, signature) in type.methods.sorted(by: { $0.key < $1.key }) {
                lines.append("| `\(type.typeName)` | `\(signature.typedDisplay(name))` | \(signature.kind) | \(signature.result) |")
            }
        }
        lines += ["", "| type | initial state (`Create.initial`) |", "| --- | --- |"]
        lines += allCases.map { "| `\($0.typeName)` | \($0.initialState) |" }
        return lines.joined(separator: "\n")
    }
}
