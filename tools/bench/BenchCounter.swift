import CrucialServer

/// The paper's §6.1.2 object: an integer with a cheap and a CPU-bound method.
/// `crucial-bench serve` links it into a server, as a user links their own types.
final class BenchCounter: SharedObject {
    static let typeName = "BenchCounter"
    var value: Int64

    init(initial: Value) throws(CrucialError) { value = initial.intValue ?? 1 }

    func snapshot() -> Value { .int(value) }

    func kind(of method: String) -> MethodKind { .write }

    func invoke(_ call: inout Call) throws(CrucialError) -> Response {
        switch call.method {
        case "increment":
            value &+= 1
            return .value(.int(value))
        case "complex":
            value = BenchCounter.complex(value)
            return .value(.int(value))
        default:
            throw call.unknownMethod(["increment", "complex"])
        }
    }

    /// 10,000 dependent multiplications; the Lua script in the benchmark does the same.
    static func complex(_ start: Int64) -> Int64 {
        var v = start
        for _ in 0..<10_000 { v = (v &* 3) % 1_000_003 }
        return v
    }
}

/// The same computation as a Redis Lua script.
let complexLua = """
    local v = tonumber(redis.call('GET', KEYS[1]) or '1')
    for i = 1, 10000 do v = (v * 3) % 1000003 end
    redis.call('SET', KEYS[1], v)
    return v
    """
