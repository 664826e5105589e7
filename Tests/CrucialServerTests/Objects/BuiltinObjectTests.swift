import CrucialCore
@testable import CrucialServerCore
import Testing

@Suite("Built-in objects against the method table")
struct BuiltinObjectTests {
    @Test("The server registers every built-in type of the table, and takes each method's kind from it")
    func registryMatchesTable() throws {
        let registry = TypeRegistry.builtins
        #expect(registry.typeNames == BuiltinType.allCases.map(\.typeName).sorted())
        for type in BuiltinType.allCases {
            let initial: Value =
                switch type {
                case .cyclicBarrier, .semaphore, .countDownLatch: .int(1)
                case .atomicByteArray, .atomicDoubleArray: .int(2)
                case .atomicMatrix: .record(["rows": .int(2), "cols": .int(2)])
                case .sharedList, .sharedSet, .sharedMap, .sharedSortedMap: .list([])
                default: .null
                }
            let object = try registry.make(type.typeName, initial: initial) { "no \(type.typeName)" }
            #expect(Swift.type(of: object).typeName == type.typeName)
            #expect(Swift.type(of: object).isSynchronizer == type.isSynchronizer, "\(type.typeName)")
            for (name, signature) in type.methods {
                #expect(object.kind(of: name) == signature.kind, "\(type.typeName).\(name)")
            }
            #expect(object.kind(of: "noSuchMethod") == .write, "unknown methods are taken for writes")
        }
    }

    @Test("Arity and unknown methods are refused from the table, with the signature in the message")
    func arityFromTable() throws {
        let barrier = try CyclicBarrier(initial: .int(2))
        let waiter = Waiter(id: WaiterID(connection: ConnectionID(1), request: 1), responder: NoResponder())
        var call = Call(ref: ObjectRef(type: "CyclicBarrier", key: "b"), method: "await", args: [.int(1), .int(2)], waiter: waiter)
        #expect(throws: CrucialError.badArguments("CyclicBarrier.await(timeoutMillis?) takes 0 to 1 argument(s), got 2")) {
            try barrier.invoke(&call)
        }
        call = Call(ref: ObjectRef(type: "CyclicBarrier", key: "b"), method: "wait", args: [], waiter: waiter)
        #expect(throws: CrucialError.self) { try barrier.invoke(&call) }
        call = Call(ref: ObjectRef(type: "CyclicBarrier", key: "b"), method: "await", args: [.string("soon")], waiter: waiter)
        #expect(throws: CrucialError.badArguments("CyclicBarrier.await: argument 1 (timeoutMillis) must be an int, got string \"soon\"")) {
            try barrier.invoke(&call)
        }
    }
}

private struct NoResponder: Responder {
    func respond(_ reply: Reply) {}
}
