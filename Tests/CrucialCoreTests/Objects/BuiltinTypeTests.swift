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
        #expect(SortedMapMethod.allCases.count == Set(SortedMapMethod.allCases.map(\.rawValue)).count)
        for m in MapMethod.allCases {
            #expect(BuiltinType.sharedSortedMap.methods[m.rawValue] == MapMethod.table[m.rawValue])
            #expect(SortedMapMethod(rawValue: m.rawValue) == .map(m))
        }
        #expect(SortedMapMethod(rawValue: "top") == .top)
        #expect(SortedMapMethod(rawValue: "nope") == nil)
    }

    @Test("Arity: required parameters, then optional ones marked ?")
    func arity() {
        #expect(MethodSignature.read().arity == 0...0)
        #expect(MapMethod.compareAndReplace.signature.arity == 3...3)
        #expect(SemaphoreMethod.tryAcquire.signature.arity == 0...2)
        #expect(SemaphoreMethod.tryAcquire.signature.parameter(1) == "timeoutMillis")
        #expect(SemaphoreMethod.tryAcquire.signature.parameter(5) == "argument 6")
        #expect(BarrierMethod.await.signature.display("await") == "await(timeoutMillis?)")
    }

    @Test("Kinds: reads, shrinking calls and blocking calls are what the servers and clients rely on")
    func kinds() {
        #expect(AtomicIntegerMethod.get.kind == .read)
        #expect(AtomicIntegerMethod.incrementAndGet.kind == .write)
        #expect(ListMethod.removeAt.kind == .shrink && !ListMethod.removeAt.kind.mayGrow)
        #expect(MapMethod.merge.kind.mayGrow)
        #expect(BarrierMethod.await.kind == MethodKind(.write, blocks: true))
        #expect(LatchMethod.await.kind == MethodKind(.read, blocks: true))
        #expect(FutureMethod.get.kind.isRead && FutureMethod.get.kind.blocks)
        #expect(BuiltinType.allCases.filter(\.isSynchronizer).map(\.typeName).sorted() == ["CountDownLatch", "CyclicBarrier", "Semaphore", "SharedFuture"])
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
