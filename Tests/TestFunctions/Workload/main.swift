// The register-and-counter workload of the linearizability tests, as a process of its own,
// so that it can run inside a network namespace (a client host of the partition tests).
//   crucial-test-workload SERVERS SECONDS
// Prints one line per call, `object input output call response` (ns since the start; output
// and response `-` when the call failed or never returned), then `done`.
import CrucialClient
import CrucialExamples
import Foundation
import Synchronization

let arguments = CommandLine.arguments
guard arguments.count == 3, let seconds = Double(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: crucial-test-workload HOST:PORT[,HOST:PORT...] SECONDS\n".utf8))
    exit(2)
}
let client = CrucialClient(
    configuration: .init(
        servers: arguments[1].split(separator: ",").map(String.init), connections: 4, failoverTimeout: .seconds(60),
        heartbeatTimeout: .seconds(2)))
let origin = ContinuousClock.now
func now() -> UInt64 { UInt64((ContinuousClock.now - origin) / .nanoseconds(1)) }
let lines = Mutex<[String]>([])
let end = origin + .seconds(seconds)

await withTaskGroup(of: Void.self) { group in
    for t in 0..<16 {
        group.addTask {
            var rng = SplitMix64(seed: UInt64(100 + t))
            while ContinuousClock.now < end {
                let counter = rng.next() % 2 == 0
                let key = "\(counter ? "counter" : "register")-\(rng.next() % 8)"
                let (input, method, args): (String, String, [Value]) =
                    counter
                    ? (rng.next() % 3 == 0 ? ("r", "get", []) : ("i", "incrementAndGet", []))
                    : (rng.next() % 2 == 0 ? ("r", "get", []) : { let v = Int64(rng.next() % 1000) + 1; return ("w\(v)", "set", [.int(v)]) }())
                let call = now()
                let output = try? await client.invoke(
                    ObjectRef(type: "AtomicLong", key: key), method, args, create: Create(initial: .int(0), persistent: true),
                    readOnly: method == "get")
                let response = output == nil ? "-" : String(now())
                let value = output.map { input.hasPrefix("w") ? "0" : String($0.intValue ?? -1) } ?? "-"
                lines.withLock { $0.append("\(key) \(input) \(value) \(call) \(response)") }
            }
        }
    }
}
client.close()
for line in lines.withLock({ $0 }) { print(line) }
print("done")
