// crucial-fuzz: what a server does with bytes from the network, for libFuzzer.
//
// Built by tools/fuzz.sh with `--sanitize fuzzer --sanitize address -D CRUCIAL_FUZZING`, it
// is a libFuzzer target. Built normally it is `crucial-fuzz FILE|DIR...`, which runs each input
// through the same harness: the tests replay the seed corpus and every input the fuzzer
// ever crashed on (tools/fuzz/regressions) this way.
//
// One input goes through, in turn:
//   1. FrameDecoder over the input as a stream of length-prefixed frames (64 KiB limit);
//   2. WireCodec.decode of the input as one frame payload: a frame that decodes must
//      encode and decode to itself;
//   3. for an Invoke, the call on an in-memory ObjectStore of the built-in types (the
//      server's argument checks and methods), then the object's removal;
//   4. the arguments through ValueDecoder into a few Codable shapes user types use.
import CrucialCore
import CrucialServerCore
import CrucialTransport
import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix

/// Answers nobody: parked calls are drained when the object is removed.
struct Discard: Responder {
    func respond(_ reply: Reply) {}
}

struct Shape: Codable {
    var name: String
    var weights: [Double]
    var tags: [String: Int]?
    var nested: [Shape]?
}

let store = ObjectStore(timerLoop: MultiThreadedEventLoopGroup.singleton.next(), limits: Limits(maxStateBytes: 256 << 20))

/// Splits `bytes` into frames the way a connection does; throws past the limit, as the server does.
func frames(of bytes: ByteBuffer) -> [ByteBuffer] {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameSize: 64 << 10)))
    defer { _ = try? channel.finish() }
    guard (try? channel.writeInbound(bytes)) != nil else { return [] }
    var out: [ByteBuffer] = []
    while let frame = try? channel.readInbound(as: ByteBuffer.self) { out.append(frame) }
    return out
}

func fuzz(_ input: [UInt8]) {
    let buffer = ByteBuffer(bytes: input)
    for payload in frames(of: buffer) { _ = try? WireCodec.decode(payload) }

    guard let frame = try? WireCodec.decode(buffer) else { return }
    var encoded = ByteBuffer()
    WireCodec.encode(frame, into: &encoded)
    encoded.moveReaderIndex(forwardBy: 4)
    guard let again = try? WireCodec.decode(encoded) else { fatalError("a decoded frame does not decode once re-encoded: \(frame)") }
    // NaN is not equal to itself (and arrays sharing storage skip the comparison): a frame
    // holding one compares equal only in text, where each NaN shows its bits.
    if again != frame, "\(again)" != "\(frame)" { fatalError("a frame changed through encode and decode:\n\(frame)\n\(again)") }

    guard case .invoke(let invoke) = frame else { return }
    let waiter = Waiter(id: WaiterID(connection: ConnectionID(1), request: invoke.id), responder: Discard())
    _ = store.invoke(invoke, waiter: waiter)
    store.remove(invoke.ref)

    let decoder = ValueDecoder()
    for arg in invoke.args {
        _ = try? decoder.decode(Shape.self, from: arg)
        _ = try? decoder.decode([String: [Double]].self, from: arg)
        _ = try? decoder.decode([Int64?].self, from: arg)
        _ = try? decoder.decode(String.self, from: arg)
    }
}

#if CRUCIAL_FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzz(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// libFuzzer's driver, for a program whose `main` is not libFuzzer's.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM links an executable with `main` = `<module>_main` (so that tests can link it):
/// here that hands over to libFuzzer. (Without the rename, libFuzzer's own `main` runs.)
@_cdecl("crucial_fuzz_main")
public func crucialFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv, fuzzerTestOneInput)
}
#else
/// The seed corpus: every frame kind, and calls on every built-in type.
func seeds() -> [(String, Frame)] {
    func call(_ type: String, _ method: String, _ args: [Value], initial: Value) -> Frame {
        .invoke(
            Invoke(
                id: 1, ref: ObjectRef(type: type, key: "k"), method: method, args: args, create: Create(initial: initial, session: 7),
                clientID: 3, seq: 1))
    }
    let shape: Value = .record(["name": .string("a"), "weights": .doubles([1, 2.5]), "tags": .record(["x": .int(1)])])
    var out: [(String, Frame)] = [
        ("hello", .hello(Hello(clientName: "seed", clientNonce: Array(repeating: 1, count: 32)))),
        ("challenge", .challenge(serverNonce: Array(repeating: 2, count: 32))),
        ("authenticate", .authenticate(proof: Array(repeating: 3, count: 32))),
        ("hello-reply", .helloReply(HelloReply(serverID: "s", view: View(id: 2, members: [.init(id: "a", address: "127.0.0.1:1")], rf: 2), maxFrameSize: 1024))),
        ("result-error", .result(Reply(id: 4, outcome: .error(CrucialError(.badArguments, "no"))))),
        ("remove", .remove(id: 5, ref: ObjectRef(type: "SharedMap", key: "k"))),
        ("ping", .ping(id: 6)),
        ("list-objects", .listObjects(id: 7, typePrefix: "Atomic")),
        ("object-list", .objectList(id: 8, objects: [ObjectInfo(ref: ObjectRef(type: "T", key: "k"), persistent: true, waiters: 1, session: 2)])),
        ("keep-alive", .keepAlive(id: 9, session: 7, leaseMillis: 1000, clientID: 11)),
        ("offer", .offer(id: 15, viewID: 3, entries: [OfferEntry(ref: ObjectRef(type: "AtomicLong", key: "c"), version: ObjectVersion(view: 3, index: 2))])),
        ("end-session", .endSession(id: 10, session: 7)),
        ("get-object", .getObject(id: 11, ref: ObjectRef(type: "AtomicLong", key: "k"))),
        ("load-plugin", .loadPlugin(id: 12, name: "p", offset: 0, chunk: [0x7f, 0x45, 0x4c, 0x46], last: true)),
        (
            "replicate",
            .replicate(
                Replicate(
                    id: 13, viewID: 2, ref: ObjectRef(type: "AtomicLong", key: "k"), version: ObjectVersion(view: 2, index: 1),
                    operation: .install(ObjectState(state: .int(5), persistent: true))))
        ),
        ("transfer-done", .transferDone(TransferDone(id: 14, viewID: 2, from: "a"))),
        ("long-add", call("AtomicLong", "addAndGet", [.int(5)], initial: .int(0))),
        ("int-cas", call("AtomicInt", "compareAndSet", [.int(0), .int(1)], initial: .int(0))),
        ("double-add", call("AtomicDouble", "addAndGet", [.double(0.5)], initial: .double(1))),
        ("boolean-set", call("AtomicBoolean", "getAndSet", [.bool(true)], initial: .bool(false))),
        ("reference-set", call("AtomicReference", "set", [shape], initial: .null)),
        ("bytes-add", call("AtomicByteArray", "addAndGet", [.int(1), .int(3)], initial: .int(4))),
        ("doubles-addall", call("AtomicDoubleArray", "addAndGetAll", [.doubles([1, 2, 3])], initial: .int(3))),
        ("matrix-row", call("AtomicMatrix", "setRow", [.int(0), .doubles([1, 2])], initial: .record(["rows": .int(2), "cols": .int(2)]))),
        ("list-addall", call("SharedList", "addAll", [.list([.string("a"), shape])], initial: .list([]))),
        ("set-add", call("SharedSet", "add", [.string("x")], initial: .list([]))),
        ("map-merge", call("SharedMap", "merge", [.string("k"), .int(1), .string("sum")], initial: .list([]))),
        ("sorted-top", call("SharedSortedMap", "top", [.int(2)], initial: .list([.list([.int(1), .string("a")])]))),
        ("barrier-await", call("CyclicBarrier", "await", [.int(10)], initial: .int(2))),
        ("semaphore-acquire", call("Semaphore", "tryAcquire", [.int(2), .int(5)], initial: .int(1))),
        ("latch-await", call("CountDownLatch", "await", [.int(5)], initial: .int(1))),
        ("future-set", call("SharedFuture", "set", [shape], initial: .null)),
    ]
    var deep = Value.int(1)
    for n in 0..<40 { deep = n % 2 == 0 ? .list([deep, .null]) : .record(["k": deep]) }
    out.append(("nested", call("AtomicReference", "set", [deep], initial: .null)))
    return out
}

@main
struct Replay {
    static func main() {
        if CommandLine.arguments.count == 3, CommandLine.arguments[1] == "--write-seeds" {
            let dir = CommandLine.arguments[2]
            for (name, frame) in seeds() {
                var buffer = ByteBuffer()
                WireCodec.encode(frame, into: &buffer)
                buffer.moveReaderIndex(forwardBy: 4)  // the corpus holds payloads: the harness frames them itself
                _ = FileManager.default.createFile(atPath: "\(dir)/\(name)", contents: Data(buffer.readableBytesView))
            }
            print("crucial-fuzz: wrote \(seeds().count) seeds to \(dir)")
            return
        }
        let paths = CommandLine.arguments.dropFirst()
        guard !paths.isEmpty else {
            print("usage: crucial-fuzz FILE|DIRECTORY...  (runs each input through the fuzz harness; tools/fuzz.sh fuzzes)")
            exit(2)
        }
        var count = 0
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                print("crucial-fuzz: no such file: \(path)")
                exit(2)
            }
            let files =
                isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { "\(path)/\($0)" } : [path]
            for file in files where !file.hasSuffix(".md") && !(file.split(separator: "/").last ?? "").hasPrefix(".") {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                fuzz(Array(data))
                count += 1
            }
        }
        print("crucial-fuzz: \(count) inputs ran without a crash")
    }
}
#endif
