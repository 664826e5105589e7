import CrucialCore
import Foundation
import Testing

@Suite("Built-in types' method table")
struct BuiltinTypeTests {
    @Test("Every type has methods, each name once, and a sorted map has every map method")
    func tables() {
        for type in BuiltinType.allCases {
            #expect(!type.methods.isEmpty, "\(type.typeName)")
            // Every method says what it answers, and every type what it starts from.
            for (name, signature) in type.methods { #expect(!signature.result.isEmpty, "\(type.typeName).\(name)") }
            #expect(!type.initialState.isEmpty, "\(type.typeName)")
        }
        let sorted = SortedMapMethod.Name.allCases
        #expect(sorted.count == Set(sorted.map(\.rawValue)).count)
        for m in MapMethod.Name.allCases {
            #expect(BuiltinType.sharedSortedMap.methods[m.rawValue] == MapMethod.table[m.rawValue])
            #expect(SortedMapMethod.Name(rawValue: m.rawValue) == .map(m))
        }
        #expect(SortedMapMethod.Name(rawValue: "top") == .top)
        #expect(SortedMapMethod.Name(rawValue: "nope") == nil)
        #expect(sorted.count == MapMethod.Name.allCases.count + 7)
    }

    @Test("Arity: required parameters, then optional ones marked ?")
    func arity() {
        #expect(AtomicIntegerMethod.arity(of: .get) == 0...0)
        #expect(MapMethod.arity(of: .compareAndReplace) == 3...3)
        #expect(SemaphoreMethod.arity(of: .tryAcquire) == 0...2)
        #expect(SortedMapMethod.arity(of: .map(.merge)) == 3...3)
        let tryAcquire = SemaphoreMethod.signature(of: .tryAcquire)
        #expect(tryAcquire.arity == 0...2)
        #expect(tryAcquire.parameter(1) == "timeoutMillis")
        #expect(tryAcquire.parameter(5) == "argument 6")
        #expect(BarrierMethod.signature(of: .await).display("await") == "await(timeoutMillis?)")
        #expect(MapMethod.signature(of: .merge).typedDisplay("merge") == #"merge(key: any value, value: any value, op: "sum"/"min"/"max"/"replace"/"append")"#)
        // The generated arity and the signature's agree for every method.
        for type in BuiltinType.allCases {
            for (name, signature) in type.methods { #expect(signature.arity == type.family.arity(named: name), "\(type.typeName).\(name)") }
        }
    }

    @Test("Kinds: reads, shrinking calls and blocking calls are what the servers and clients rely on")
    func kinds() {
        #expect(AtomicIntegerMethod.get.kind == .read)
        #expect(AtomicIntegerMethod.incrementAndGet.kind == .write)
        #expect(ListMethod.removeAt(index: Index(0)).kind == .shrink && !ListMethod.kind(of: .removeAt).mayGrow)
        #expect(MapMethod.kind(of: .merge).mayGrow)
        #expect(SortedMapMethod.kind(of: .map(.clear)) == .shrink)
        #expect(BarrierMethod.kind(of: .await) == MethodKind(.write, blocks: true))
        #expect(LatchMethod.kind(of: .await) == MethodKind(.read, blocks: true))
        #expect(FutureMethod.get().kind.isRead && FutureMethod.get().kind.blocks)
        #expect(BuiltinType.allCases.filter(\.isSynchronizer).map(\.typeName).sorted() == ["CountDownLatch", "CyclicBarrier", "Semaphore", "SharedFuture"])
        // The kinds the clients' pipelines and admin calls look up by name agree with the declarations.
        #expect(BuiltinType.atomicLong.kind(of: "addAndGet") == .write && BuiltinType.atomicLong.kind(of: "nope") == nil)
        #expect(BuiltinType.sharedSortedMap.kind(of: "top") == .read && BuiltinType.sharedSortedMap.kind(of: "clear") == .shrink)
    }

    @Test("docs/PROTOCOL.md lists every built-in method as the table declares it (regenerate with `crucial types --markdown`)")
    func documented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/PROTOCOL.md"), encoding: .utf8)
        let start = try #require(text.range(of: "<!-- builtin-methods -->\n"))
        let end = try #require(text.range(of: "\n<!-- /builtin-methods -->", range: start.upperBound..<text.endIndex))
        #expect(String(text[start.upperBound..<end.lowerBound]) == BuiltinType.markdownReference)
    }
}
