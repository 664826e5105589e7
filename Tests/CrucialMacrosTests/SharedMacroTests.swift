@testable import CrucialMacrosImplementation
import SwiftParser
import SwiftSyntax
import SwiftSyntaxMacroExpansion
import SwiftSyntaxMacrosGenericTestSupport
import Testing

@Suite("@Shared and @SharedKey expansions")
struct SharedMacroTests {
    @Test("A struct gets a dispatch table, a proxy and its missing conformances")
    func structExpansion() {
        expect(
            """
            @Shared
            struct Counter {
                var n = 0
                mutating func add(_ x: Int, times: Int = 1) throws -> Int { n += x * times; return n }
                func get() -> Int { n }
                private func hidden() {}
            }
            """,
            expands: """
                struct Counter {
                    var n = 0
                    mutating func add(_ x: Int, times: Int = 1) throws -> Int { n += x * times; return n }
                    func get() -> Int { n }
                    private func hidden() {}

                    static var crucialTypeName: String {
                        "Counter"
                    }

                    static var crucialMethods: [String: CrucialCore.MethodKind] {
                        ["add": .write, "get": .read]
                    }

                    static var crucialFingerprint: String {
                        "c36d8ba45130746b"
                    }

                    static func crucialInvoke(_ object: inout Counter, _ call: CrucialCore.SharedCall) throws -> CrucialCore.Value {
                        switch call.method {
                        case "add":
                            try call.arity(2)
                            let a0 = try call.argument(0, "x", as: (Int).self)
                            let a1 = try call.argument(1, "times", as: (Int).self)
                            return try call.result(try object.add(a0, times: a1))
                        case "get":
                            try call.arity(0)
                            return try call.result(object.get())
                        default:
                            throw call.unknownMethod(crucialMethods.keys)
                        }
                    }

                    /// The client-side stand-in for a shared `Counter`: each method runs on the object's server.
                    struct Shared: SharedObjectProxy {
                        typealias Object = Counter
                        let handle: SharedObjectHandle
                        init(handle: SharedObjectHandle) {
                            self.handle = handle
                        }

                        /// Runs `Counter.add` on the object, on its server.
                        @discardableResult
                        func add(_ x: Int, times: Int = 1) async throws -> Int {
                            try Self.crucialResult(try await crucialCall("add", [try Self.crucialArgument(x, "x"), try Self.crucialArgument(times, "times")], readOnly: false), "add", as: (Int).self)
                        }

                        /// Runs `Counter.get` on the object, on its server.
                        @discardableResult
                        func get() async throws -> Int {
                            try Self.crucialResult(try await crucialCall("get", [], readOnly: true), "get", as: (Int).self)
                        }
                    }

                    static var crucialStateDefaults: [String: @Sendable () throws -> CrucialCore.Value?] {
                        ["n": {
                                    try CrucialCore.SharedStateDefault.value((0))
                                }]
                    }
                }

                extension Counter: SharedType, Codable {
                }
                """)
    }

    @Test("A class's methods are writes unless marked @ReadOnly")
    func classReads() {
        expect(
            """
            @Shared
            final class Board {
                var scores: [String: Int] = [:]
                func record(_ p: String, _ s: Int) { scores[p] = s }
                @ReadOnly func top(_ n: Int) -> [String] { [] }
            }
            """,
            expands: """
                final class Board {
                    var scores: [String: Int] = [:]
                    func record(_ p: String, _ s: Int) { scores[p] = s }
                    func top(_ n: Int) -> [String] { [] }

                    static var crucialTypeName: String {
                        "Board"
                    }

                    static var crucialMethods: [String: CrucialCore.MethodKind] {
                        ["record": .write, "top": .read]
                    }

                    static var crucialFingerprint: String {
                        "41379f213292d5e8"
                    }

                    static func crucialInvoke(_ object: inout Board, _ call: CrucialCore.SharedCall) throws -> CrucialCore.Value {
                        switch call.method {
                        case "record":
                            try call.arity(2)
                            let a0 = try call.argument(0, "p", as: (String).self)
                            let a1 = try call.argument(1, "s", as: (Int).self)
                            object.record(a0, a1)
                            return .null
                        case "top":
                            try call.arity(1)
                            let a0 = try call.argument(0, "n", as: (Int).self)
                            return try call.result(object.top(a0))
                        default:
                            throw call.unknownMethod(crucialMethods.keys)
                        }
                    }

                    /// The client-side stand-in for a shared `Board`: each method runs on the object's server.
                    struct Shared: SharedObjectProxy {
                        typealias Object = Board
                        let handle: SharedObjectHandle
                        init(handle: SharedObjectHandle) {
                            self.handle = handle
                        }

                        /// Runs `Board.record` on the object, on its server.
                        func record(_ p: String, _ s: Int) async throws {
                            _ = try await crucialCall("record", [try Self.crucialArgument(p, "p"), try Self.crucialArgument(s, "s")], readOnly: false)
                        }

                        /// Runs `Board.top` on the object, on its server.
                        @discardableResult
                        func top(_ n: Int) async throws -> [String] {
                            try Self.crucialResult(try await crucialCall("top", [try Self.crucialArgument(n, "n")], readOnly: true), "top", as: ([String]).self)
                        }
                    }

                    static var crucialStateDefaults: [String: @Sendable () throws -> CrucialCore.Value?] {
                        ["scores": {
                                    try CrucialCore.SharedStateDefault.value(([:]) as [String: Int])
                                }]
                    }
                }

                extension Board: SharedType, Codable {
                }
                """)
        expect(
            "@Shared struct S {\n    var n = 0\n    @ReadOnly mutating func bump() { n += 1 }\n}",
            expands: "struct S {\n    var n = 0\n    mutating func bump() { n += 1 }\n}",
            diagnostics: [("S.bump is mutating and marked @ReadOnly: a read must not change the state (drop one of them)", 3, 29)])
        expect(
            "struct Plain {\n    @ReadOnly func f() {}\n}",
            expands: "struct Plain {\n    func f() {}\n}",
            diagnostics: [("@ReadOnly marks a method of a @Shared type; f is not in one (an extension's methods are not shipped)", 2, 5)])
    }

    @Test("The fingerprint follows the method table: names, types, results and kinds, not labels or bodies")
    func fingerprints() {
        func fingerprint(_ source: String) -> String {
            let file = Parser.parse(source: source)
            let decl = file.statements.first!.item.as(StructDeclSyntax.self)!
            let attribute = decl.attributes.first!.as(AttributeSyntax.self)!
            return SharedTarget(decl, attribute: attribute, diagnose: { _, _ in })!.fingerprint
        }
        let base = fingerprint("@Shared struct C {\n var n = 0\n mutating func add(_ x: Int) -> Int { n += x; return n }\n func get() -> Int { n }\n}")
        #expect(base.count == 16)
        // Same table: other labels, bodies, state, order, spacing.
        #expect(base == fingerprint("@Shared struct C {\n var m = [1]\n func get()->Int { 0 }\n mutating func add(by y: Int) -> Int { 1 }\n}"))
        // Another table: a parameter type, a result, a kind, a new method.
        #expect(base != fingerprint("@Shared struct C {\n mutating func add(_ x: Double) -> Int { 0 }\n func get() -> Int { 0 }\n}"))
        #expect(base != fingerprint("@Shared struct C {\n mutating func add(_ x: Int) -> Int { 0 }\n func get() -> Int64 { 0 }\n}"))
        #expect(base != fingerprint("@Shared struct C {\n mutating func add(_ x: Int) -> Int { 0 }\n mutating func get() -> Int { 0 }\n}"))
        #expect(base != fingerprint("@Shared struct C {\n mutating func add(_ x: Int) -> Int { 0 }\n func get() -> Int { 0 }\n func reset() {}\n}"))
    }

    @Test("Stored vars declared with a value are the state's defaults; static, lazy, let, computed, wrapped and self-decoding ones are not")
    func stateDefaults() {
        func defaults(_ source: String) -> [String] {
            let file = Parser.parse(source: source)
            let decl = file.statements.first!.item.as(ClassDeclSyntax.self)!
            let attribute = decl.attributes.first!.as(AttributeSyntax.self)!
            return SharedTarget(decl, attribute: attribute, diagnose: { _, _ in })!.defaults.map { "\($0.name)=\($0.value):\($0.type ?? "_")" }
        }
        let found = defaults(
            """
            @Shared final class C {
                var plain: Int
                var merges = 0
                var seen: Set<String> = []
                var note: String? = "x"
                var `default` = "d", other = 1.5
                var observed = 2 { didSet {} }
                let fixed = 3
                static var shared = 4
                lazy var later = 5
                @Wrapped var wrapped = 6
                var computed: Int { 7 }
                var got: Int { get { 8 } set {} }
                var unwrapped: Int! = 9
                var (a, b) = (1, 2)
            }
            """)
        #expect(found == ["merges=0:_", "seen=[]:Set<String>", "note=\"x\":String?", "default=\"d\":_", "other=1.5:_", "observed=2:_"])
        #expect(defaults("@Shared final class C {\n var n = 0\n enum CodingKeys: String, CodingKey { case n = \"count\" }\n}").isEmpty)
        #expect(defaults("@Shared final class C {\n var n = 0\n init(from decoder: any Decoder) throws { n = 1 }\n}").isEmpty)
        #expect(defaults("@Shared final class C {\n var n = 0\n init(n: Int) { self.n = n }\n}") == ["n=0:_"])
    }

    @Test("Types and methods that cannot be shipped are refused with a reason")
    func refusals() {
        expect(
            "@Shared class Model {\n    var w = 0\n}",
            expands: "class Model {\n    var w = 0\n}",
            diagnostics: [("@Shared classes must be final: mark Model final (its state is encoded and decoded as a whole)", 1, 15)])
        expect(
            "@Shared enum E {\n    case a\n}",
            expands: "enum E {\n    case a\n}",
            diagnostics: [("@Shared applies to a final class or a struct", 1, 1)])
        expect(
            "@Shared struct G<T> {\n    var t: Int\n}",
            expands: "struct G<T> {\n    var t: Int\n}",
            diagnostics: [("@Shared types cannot be generic", 1, 17)])
        expect(
            """
            @Shared final class M {
                func a() async {}
                func b<T>(_ t: T) {}
                func c() {}
                func c(_ x: Int) {}
                func d(_ xs: Int...) {}
                func e(_ x: inout Int) {}
            }
            """,
            expands: """
                final class M {
                    func a() async {}
                    func b<T>(_ t: T) {}
                    func c() {}
                    func c(_ x: Int) {}
                    func d(_ xs: Int...) {}
                    func e(_ x: inout Int) {}
                }
                """,
            diagnostics: [
                ("M.a is async: shipped methods run under the object's lock and must be synchronous (make it private to keep it local)", 2, 10),
                ("M.b is generic: a shipped method needs concrete argument types", 3, 10),
                ("M has two methods named c: shipped methods are called by name, so rename one (or make it private)", 5, 10),
                ("M.d: variadic parameters cannot be shipped; take an array", 6, 12),
                ("M.e: inout or borrowing parameters cannot be shipped", 7, 12),
            ])
    }

    @Test("@SharedKey stores the proxy and names it after the property, or the key given, for user and built-in types")
    func sharedProperty() {
        expect(
            """
            struct W {
                @SharedKey var centroids = GlobalCentroids.Shared(GlobalCentroids())
                @SharedKey("m") var model: Model.Shared = .init(Model())
                @SharedKey var counter = AtomicLong()
                @SharedKey var table = SharedMap<String, Int>()
            }
            """,
            expands: """
                struct W {
                    var centroids {
                        @storageRestrictions(initializes: _centroids)
                        init(initialValue) {
                            _centroids = initialValue.keyed("centroids")
                        }
                        get {
                            _centroids
                        }
                        set {
                            _centroids = newValue.keyed("centroids")
                        }
                    }

                    private var _centroids: GlobalCentroids.Shared
                    var model: Model.Shared {
                        @storageRestrictions(initializes: _model)
                        init(initialValue) {
                            _model = initialValue.keyed("m")
                        }
                        get {
                            _model
                        }
                        set {
                            _model = newValue.keyed("m")
                        }
                    }

                    private var _model: Model.Shared
                    var counter {
                        @storageRestrictions(initializes: _counter)
                        init(initialValue) {
                            _counter = initialValue.keyed("counter")
                        }
                        get {
                            _counter
                        }
                        set {
                            _counter = newValue.keyed("counter")
                        }
                    }

                    private var _counter: AtomicLong
                    var table {
                        @storageRestrictions(initializes: _table)
                        init(initialValue) {
                            _table = initialValue.keyed("table")
                        }
                        get {
                            _table
                        }
                        set {
                            _table = newValue.keyed("table")
                        }
                    }

                    private var _table: SharedMap<String, Int>
                }
                """)
        expect(
            "struct W {\n    @SharedKey let c = X.Shared(X())\n}",
            expands: "struct W {\n    let c = X.Shared(X())\n}",
            diagnostics: [("@SharedKey properties must be `var` (Swift's init accessors need it); the proxy itself never changes", 2, 16)])
        expect(
            "struct W {\n    @SharedKey var c = make()\n}",
            expands: "struct W {\n    var c = make()\n}",
            diagnostics: [("@SharedKey cannot tell the property's type: write `var c: AtomicLong = ...`", 2, 20)])
        expect(
            "struct W {\n    @SharedKey var c = AtomicLong.make()\n}",
            expands: "struct W {\n    var c = AtomicLong.make()\n}",
            diagnostics: [("@SharedKey cannot tell the property's type: write `var c: AtomicLong = ...`", 2, 20)])
    }
}
