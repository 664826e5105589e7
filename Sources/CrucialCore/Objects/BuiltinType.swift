/// The built-in object types and every method of each: its wire name, its kind and its
/// parameters. This is the one place a built-in method is declared. The server's objects
/// switch over these enums (exhaustively: a method added here does not build until the
/// server runs it), check arity against them, and take each method's kind from them; the
/// client's proxies call through them, so a name or a kind cannot differ between the two.
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

    /// Every method of the type, by wire name (built once: servers look methods up here on
    /// every call; a switch to a static table, not a dictionary keyed by the type, which
    /// hashed on every call).
    package var methods: [String: MethodSignature] {
        switch self {
        case .atomicInt, .atomicLong: Tables.atomicInteger
        case .atomicBoolean, .atomicReference: Tables.atomicValue
        case .atomicDouble: Tables.atomicDouble
        case .atomicByteArray: Tables.byteArray
        case .atomicDoubleArray: Tables.doubleArray
        case .atomicMatrix: Tables.matrix
        case .sharedList: Tables.list
        case .sharedSet: Tables.set
        case .sharedMap: Tables.map
        case .sharedSortedMap: Tables.sortedMap
        case .cyclicBarrier: Tables.barrier
        case .semaphore: Tables.semaphore
        case .countDownLatch: Tables.latch
        case .sharedFuture: Tables.future
        }
    }

    private enum Tables {
        static let atomicInteger = AtomicIntegerMethod.table
        static let atomicValue = AtomicValueMethod.table
        static let atomicDouble = AtomicDoubleMethod.table
        static let byteArray = ByteArrayMethod.table
        static let doubleArray = DoubleArrayMethod.table
        static let matrix = MatrixMethod.table
        static let list = ListMethod.table
        static let set = SetMethod.table
        static let map = MapMethod.table
        static let sortedMap = SortedMapMethod.table
        static let barrier = BarrierMethod.table
        static let semaphore = SemaphoreMethod.table
        static let latch = LatchMethod.table
        static let future = FutureMethod.table
    }

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

/// A method's kind and parameters. A parameter named with a trailing `?` may be left out,
/// and so may every one after it.
package struct MethodSignature: Sendable, Equatable {
    package let kind: MethodKind
    package let parameters: [String]
    /// What a call answers, for docs/PROTOCOL.md (set by the method's enum: see ``BuiltinMethod/result``).
    package private(set) var result = ""

    /// How many arguments a call must pass, and may.
    package let arity: ClosedRange<Int>

    package init(_ kind: MethodKind, _ parameters: [String]) {
        self.kind = kind
        self.parameters = parameters
        self.arity = (parameters.firstIndex { $0.hasSuffix("?") } ?? parameters.count)...parameters.count
    }

    /// The name of parameter `i`, without its `?`.
    package func parameter(_ i: Int) -> String {
        guard i < parameters.count else { return "argument \(i + 1)" }
        let p = parameters[i]
        return p.hasSuffix("?") ? String(p.dropLast()) : p
    }

    /// The same signature answering `result`.
    package func returning(_ result: String) -> MethodSignature {
        var s = self
        s.result = result
        return s
    }

    /// `name(p1, p2?)`, for messages.
    package func display(_ name: String) -> String { "\(name)(\(parameters.joined(separator: ", ")))" }

    package static func read(_ parameters: String...) -> MethodSignature { MethodSignature(.read, parameters) }
    package static func write(_ parameters: String...) -> MethodSignature { MethodSignature(.write, parameters) }
    package static func shrink(_ parameters: String...) -> MethodSignature { MethodSignature(.shrink, parameters) }
    /// A call that may wait on the server until others act.
    package static func blocking(_ access: MethodKind.Access, _ parameters: String...) -> MethodSignature {
        MethodSignature(MethodKind(access, blocks: true), parameters)
    }
}

/// The methods of one built-in type (or of a family of them), as an enum of wire names.
package protocol BuiltinMethod: RawRepresentable, CaseIterable, Hashable, Sendable where RawValue == String {
    var signature: MethodSignature { get }
    /// What a call answers (the `Result` value), and its errors beyond the usual ones.
    var result: String { get }
}

extension BuiltinMethod {
    /// Every method by wire name.
    package static var table: [String: MethodSignature] {
        Dictionary(uniqueKeysWithValues: allCases.map { ($0.rawValue, $0.signature.returning($0.result)) })
    }

    package var kind: MethodKind { signature.kind }
}

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
                lines.append("| `\(type.typeName)` | `\(signature.display(name))` | \(signature.kind) | \(signature.result) |")
            }
        }
        lines += ["", "| type | initial state (`Create.initial`) |", "| --- | --- |"]
        lines += allCases.map { "| `\($0.typeName)` | \($0.initialState) |" }
        return lines.joined(separator: "\n")
    }
}
