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

    /// Runs `method` on `object` with `args`, answering its result or error.
    private func run(_ object: some SharedObject, _ method: String, _ args: [Value]) -> Result<Response, CrucialError> {
        let waiter = Waiter(id: WaiterID(connection: ConnectionID(1), request: 1), responder: NoResponder())
        var call = Call(ref: ObjectRef(type: type(of: object).typeName, key: "k"), method: method, args: args, waiter: waiter)
        do throws(CrucialError) { return .success(try object.invoke(&call)) } catch { return .failure(error) }
    }

    @Test("Arguments of the wrong form are refused naming the type, method, position and parameter; indexes name theirs too")
    func argumentErrors() throws {
        let long = try AtomicLong(initial: .int(1))
        #expect(run(long, "addAndGet", [.double(1.5)]) == .failure(.badArguments("AtomicLong.addAndGet: argument 1 (delta) must be an int, got double 1.5")))
        #expect(run(long, "accumulateAndGet", [.int(2), .string("avg")])
            == .failure(.badArguments("AtomicLong.accumulateAndGet: unknown op \"avg\" (sum, max, min, product)")))
        #expect(run(long, "accumulateAndGet", [.int(2), .string("max")]) == .success(.value(.int(2))))
        let int = try AtomicInt(initial: .int(1))
        #expect(run(int, "set", [.int(1 << 40)]) == .failure(.badArguments("AtomicInt.set: newValue 1099511627776 does not fit in Int32")))
        let bytes = try AtomicByteArray(initial: .int(2))
        #expect(run(bytes, "set", [.int(1), .int(256)]) == .failure(.badArguments("AtomicByteArray.set: value 256 is not a byte (0...255)")))
        #expect(run(bytes, "get", [.int(2)]) == .failure(CrucialError(.outOfRange, "AtomicByteArray.get: index 2 is out of range 0..<2")))
        let matrix = try AtomicMatrix(initial: .record(["rows": .int(2), "cols": .int(3)]))
        #expect(run(matrix, "get", [.int(0), .int(3)]) == .failure(CrucialError(.outOfRange, "AtomicMatrix.get: col 3 is out of range 0..<3")))
        let map = try SharedMap(initial: .null)
        #expect(run(map, "merge", [.int(1), .int(2), .string("mul")])
            == .failure(.badArguments("SharedMap.merge: unknown op \"mul\" (sum, min, max, replace, append)")))
        #expect(run(map, "putAll", [.list([.int(1)])]) == .failure(.badArguments("SharedMap.putAll: entries must be [key, value] pairs")))
        #expect(run(map, "putAll", [.string("x")]) == .failure(.badArguments("SharedMap.putAll: argument 1 (entries) must be a list, got string \"x\"")))
        let sorted = try SharedSortedMap(initial: .null)
        #expect(run(sorted, "top", [.int(-1)]) == .failure(.badArguments("SharedSortedMap.top: argument 1 (k) must not be negative, got -1")))
        #expect(run(sorted, "put", [.int(1), .int(2)]) == .success(.value(.null)), "a map method of the sorted map")
        let semaphore = try Semaphore(initial: .int(1))
        #expect(run(semaphore, "tryAcquire", [.null, .int(-5)]) == .failure(.badArguments("Semaphore.tryAcquire: timeoutMillis must not be negative, got -5")))
        #expect(run(semaphore, "tryAcquire", [.null, .int(0)]) == .success(.value(.bool(true))), "null permits: the default, 1")
        let array = try AtomicDoubleArray(initial: .int(2))
        #expect(run(array, "add", [.list([.int(1), .string("x")])]) == .failure(.badArguments("AtomicDoubleArray.add: argument 1 (deltas) must be an array of numbers, got list [1, \"x\"]")))
    }

    @Test("Every method's arguments go through its declaration and back: what a client encodes, a server decodes as the same call")
    func roundTrips() throws {
        let calls: [any BuiltinMethods] = [
            AtomicIntegerMethod.compareAndSet(expect: 1, update: -2), AtomicIntegerMethod.accumulateAndGet(x: 3, op: .product),
            AtomicBooleanMethod.getAndSet(newValue: true), AtomicReferenceMethod.set(newValue: .record(["a": .int(1)])),
            AtomicDoubleMethod.addAndGet(delta: 0.5), ByteArrayMethod.setAll(bytes: [1, 2]), DoubleArrayMethod.add(deltas: [1, 2]),
            MatrixMethod.setRow(index: Index(1), values: [3, 4]), ListMethod.insert(element: .string("x"), at: Index(0)),
            SetMethod.addAll(elements: [.int(1), .int(2)]), MapMethod.mergeAll(entries: Entries([(.int(1), .int(2))]), op: .sum),
            SortedMapMethod.map(.put(key: .int(1), value: .int(2))), SortedMapMethod.top(k: Count(3)),
            BarrierMethod.await(timeoutMillis: Millis(.milliseconds(1500))), BarrierMethod.await(),
            SemaphoreMethod.tryAcquire(permits: nil, timeoutMillis: Millis(.microseconds(1))), SemaphoreMethod.acquire(permits: Count(2)),
            LatchMethod.await(), FutureMethod.get(timeoutMillis: Millis(.zero)), FutureMethod.trySet(value: .null),
        ]
        for call in calls {
            func check<M: BuiltinMethods>(_ call: M) throws {
                let args = call.arguments
                #expect(M.arity(of: call.name).contains(args.count), "\(call.name.rawValue) sends \(args)")
                let decoded = try M(call.name, SharedCall(typeName: "T", method: call.name.rawValue, args: args))
                #expect(decoded.arguments == args && decoded.name == call.name, "\(call.name.rawValue)")
            }
            try check(call)
        }
        // Absent trailing optional arguments are left out; a wait rounds up to whole milliseconds.
        #expect(BarrierMethod.await().arguments == [])
        #expect(SemaphoreMethod.tryAcquire(permits: nil, timeoutMillis: Millis(.microseconds(1))).arguments == [.null, .int(1)])
        #expect(SortedMapMethod.map(.clear).name.rawValue == "clear")
    }
}

private struct NoResponder: Responder {
    func respond(_ reply: Reply) {}
}
