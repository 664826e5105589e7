@testable import CrucialCore
import Foundation
import Testing

@Suite("SHA-256 and HMAC-SHA256")
struct SHA256Tests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            out.append(UInt8(hex[i..<j], radix: 16) ?? 0)
            i = j
        }
        return out
    }

    @Test("NIST's example messages (FIPS 180-4 examples, the 1,000,000 × 'a' one included)")
    func nist() {
        #expect(Self.hex(SHA256.hash("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Self.hex(SHA256.hash([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            Self.hex(SHA256.hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(
            Self.hex(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Fed in uneven parts: the same digest.
        var h = SHA256()
        for part in ["ab", "", "cdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnop", "q"] { h.update(part.utf8) }
        #expect(Self.hex(h.finalize()) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test("RFC 4231's HMAC-SHA256 test cases 1–4, 6 and 7 (keys shorter and longer than a block)")
    func rfc4231() {
        let cases: [(key: [UInt8], data: [UInt8], mac: String)] = [
            ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (Array(1...25), [UInt8](repeating: 0xcd, count: 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            ([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            ([UInt8](repeating: 0xaa, count: 131),
             Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
             "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ]
        for c in cases { #expect(Self.hex(HMACSHA256.authenticationCode(for: c.data, key: c.key)) == c.mac) }
    }

    @Test("Random keys and messages of every length around the block boundaries agree with Python's hashlib and hmac")
    func againstPython() async throws {
        var rng = SystemRandomNumberGenerator()
        var cases: [(key: [UInt8], message: [UInt8])] = []
        for length in Array(0...130) + [255, 256, 1000, 4097] {
            let key = (0..<Int.random(in: 0...140, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            cases.append((key, (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }))
        }
        let script = """
            import hashlib, hmac, sys
            for line in sys.stdin:
                k, m = (bytes.fromhex(x) for x in line.split(" "))
                print(hashlib.sha256(m).hexdigest(), hmac.new(k, m, hashlib.sha256).hexdigest())
            """
        let input = cases.map { "\(Self.hex($0.key)) \(Self.hex($0.message))" }.joined(separator: "\n") + "\n"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let output = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let lines = output.split(separator: "\n")
        try #require(lines.count == cases.count, "python3 answered \(lines.count) lines for \(cases.count) cases")
        for (c, line) in zip(cases, lines) {
            let expected = line.split(separator: " ").map(String.init)
            #expect(Self.hex(SHA256.hash(c.message)) == expected[0], "SHA-256 of \(c.message.count) bytes")
            #expect(Self.hex(HMACSHA256.authenticationCode(for: c.message, key: c.key)) == expected[1], "HMAC, key \(c.key.count) bytes, message \(c.message.count)")
        }
    }
}
