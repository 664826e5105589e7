@testable import CrucialMacrosImplementation
import Testing

@Suite("@BuiltinMethods expansions")
struct BuiltinMethodsMacroTests {
    @Test("Cases become names, kinds, arity, the client's encoding, the server's decoding and the signatures")
    func expansion() {
        expect(
            """
            @BuiltinMethods
            package enum CounterMethod {
                /// read: the value
                case get
                /// blocking write: the value
                /// after waiting
                case wait(delta: Int64, timeoutMillis: Millis? = nil)
            }
            """,
            expands: """
                package enum CounterMethod {
                    /// read: the value
                    case get
                    /// blocking write: the value
                    /// after waiting
                    case wait(delta: Int64, timeoutMillis: Millis? = nil)

                    /// The methods by wire name.
                    package enum Name: String, BuiltinMethodName {
                        case `get`
                        case `wait`
                    }

                    /// The method this call is of.
                    package var name: Name {
                        switch self {
                        case .`get`:
                            .`get`
                        case .`wait`:
                            .`wait`
                        }
                    }

                    /// The arguments as a client sends them.
                    package var arguments: [Value] {
                        switch self {
                        case .`get`:
                            []
                        case .`wait`(let a0, let a1):
                            Self.trimmed([a0.wireValue, a1.wireValue], required: 1)
                        }
                    }

                    /// A call of `name` as a server reads it (its arguments counted already).
                    package init(_ name: Name, _ arguments: SharedCall) throws(CrucialError) {
                        switch name {
                        case .`get`:
                            self = .`get`
                        case .`wait`:
                            self = .`wait`(delta: try arguments.read(0, "delta"), timeoutMillis: try arguments.read(1, "timeoutMillis"))
                        }
                    }

                    /// The method's kind, parameters and answer.
                    package static func signature(of name: Name) -> MethodSignature {
                        switch name {
                        case .`get`:
                            MethodSignature(.read, [], answers: "the value")
                        case .`wait`:
                            MethodSignature(MethodKind(.write, blocks: true), [MethodSignature.Parameter("delta", (Int64).self), MethodSignature.Parameter("timeoutMillis", (Millis?).self)], answers: "the value after waiting")
                        }
                    }

                    /// The method's kind.
                    package static func kind(of name: Name) -> MethodKind {
                        switch name {
                        case .`get`:
                            .read
                        case .`wait`:
                            MethodKind(.write, blocks: true)
                        }
                    }

                    /// How many arguments a call of the method must pass, and may.
                    package static func arity(of name: Name) -> ClosedRange<Int> {
                        switch name {
                        case .`get`:
                            0 ... 0
                        case .`wait`:
                            1 ... 2
                        }
                    }
                }

                extension CounterMethod: BuiltinMethods {
                }
                """)
    }

    @Test("Cases without a kind, unlabelled arguments, optional ones first and two methods in one case are refused")
    func refusals() {
        expect(
            """
            @BuiltinMethods
            enum M {
                /// the value
                case get
                /// write: null
                case set(Int64, Int64)
                /// write: null
                case put(key: Value? = nil, value: Value)
                /// read: int
                case a, b
            }
            """,
            expands: """
                enum M {
                    /// the value
                    case get
                    /// write: null
                    case set(Int64, Int64)
                    /// write: null
                    case put(key: Value? = nil, value: Value)
                    /// read: int
                    case a, b
                }
                """,
            diagnostics: [
                (#"get: begin its doc comment with its kind and what it answers, "/// write: the value before" (kinds: blocking read, blocking shrink, blocking write, read, shrink, write)"#, 4, 5),
                ("label every argument of set: the label is the parameter's name in the reference", 6, 14),
                ("label every argument of set: the label is the parameter's name in the reference", 6, 21),
                ("put: value follows an optional argument; optional arguments come last", 8, 33),
                ("declare one method per case, each with its doc comment", 10, 5),
            ])
        expect(
            "@BuiltinMethods struct S {}", expands: "struct S {}",
            diagnostics: [("@BuiltinMethods applies to an enum whose cases are a type's methods", 1, 1)])
    }
}
