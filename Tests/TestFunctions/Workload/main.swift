// The register-and-counter workload of the linearizability tests, as a process of its own,
// so that it can run inside a network namespace (a client host of the partition tests).
//   crucial-test-workload SERVERS SECONDS
// Prints one line per call, `object input output call response` (input `r`, `i` or `wN`;
// ns since the start; output and response `-` when the call failed), then `done`.
import CrucialClient
import CrucialTestFunctions
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
let lines = Mutex<[String]>([])
await RegisterWorkload.run(client: client, until: origin + .seconds(seconds), now: { UInt64((ContinuousClock.now - origin) / .nanoseconds(1)) }) {
    call in
    let input =
        switch call.input {
        case .read: "r"
        case .increment: "i"
        case .write(let v): "w\(v)"
        }
    let response = call.response == .max ? "-" : String(call.response)
    lines.withLock { $0.append("\(call.object) \(input) \(call.output.map(String.init) ?? "-") \(call.call) \(response)") }
}
client.close()
for line in lines.withLock({ $0 }) { print(line) }
print("done")
