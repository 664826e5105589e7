import CrucialCore
import Foundation
import Testing

struct Point: Codable, Equatable {
    var x: Double
    var y: Double
    var label: String?
}

struct Model: Codable, Equatable {
    enum Kind: String, Codable { case linear, logistic }
    var kind: Kind
    var weights: [Double]
    var counts: [Int]
    var raw: Data
    var centroids: [[Double]]
    var byName: [String: Point]
    var byID: [Int: String]
    var flags: Set<String>
    var big: UInt64
    var small: Int8
    var nested: [Point?]
}

@Suite("ValueEncoder / ValueDecoder")
struct ValueCodecTests {
    @Test("Structs, enums, optionals, dictionaries and sets round-trip")
    func roundTrip() throws {
        let model = Model(
            kind: .logistic, weights: [0.5, -1.25, .infinity], counts: [1, -2, 3], raw: Data([0, 255, 7]),
            centroids: [[1, 2], [3, 4]], byName: ["a": Point(x: 1, y: 2, label: nil)], byID: [7: "seven", -1: "minus"],
            flags: ["x", "y"], big: UInt64(Int64.max), small: -128, nested: [nil, Point(x: 0, y: 0, label: "o")])
        let value = try ValueEncoder().encode(model)
        #expect(try ValueDecoder().decode(Model.self, from: value) == model)
    }

    @Test("Standalone values round-trip through protobuf bytes; garbage is refused")
    func valueBytes() throws {
        let model = Model(
            kind: .linear, weights: Array(repeating: 0.25, count: 1000), counts: [], raw: Data([1, 0, 2]),
            centroids: [[1, 2], [3]], byName: [:], byID: [1: "a\u{0}b"], flags: [], big: 1, small: 0, nested: [nil])
        let value = try ValueEncoder().encode(model)
        let bytes = WireCodec.encode(value: value)
        #expect(try WireCodec.decodeValue(bytes) == value)
        #expect(bytes.count < 8 * 1000 + 200)  // 1,000 doubles packed: 8 bytes each plus a little
        #expect(try WireCodec.decodeValue([]) == .null)  // an empty message is the default value
        #expect(throws: CrucialError.self) { try WireCodec.decodeValue([0xFF, 0xFF, 0xFF]) }
        var deep = Value.int(1)
        for _ in 0..<200 { deep = .list([deep]) }
        #expect(throws: CrucialError.self) { try WireCodec.decodeValue(WireCodec.encode(value: deep)) }
    }

    @Test("Numeric arrays take the packed forms")
    func packedForms() throws {
        #expect(try ValueEncoder().encode([1.0, 2.0]) == .doubles([1, 2]))
        #expect(try ValueEncoder().encode([1, 2] as [Int]) == .ints([1, 2]))
        #expect(try ValueEncoder().encode([1, 2] as [UInt8]) == .bytes([1, 2]))
        #expect(try ValueEncoder().encode(Point(x: 1, y: 2)) == .record(["x": .double(1), "y": .double(2)]))
        #expect(try ValueEncoder().encode(Optional<Int>.none) == .null)
    }

    @Test("A long list of records or lists encodes in linear work (each append used to copy the list: 300,000 pairs took hours)")
    func longLists() throws {
        let pairs = (0..<300_000).map { [$0, $0 % 7] }
        let value = try ValueEncoder().encode(pairs)
        #expect(value.listValue?.count == 300_000)
        #expect(value.listValue?.last == .ints([299_999, 299_999 % 7]))
        let points = (0..<100_000).map { Point(x: Double($0), y: 0) }
        #expect(try ValueDecoder().decode([Point].self, from: try ValueEncoder().encode(points)).count == 100_000)
    }

    @Test("Mismatches throw DecodingError naming the path")
    func mismatches() throws {
        let v: Value = .record(["x": .string("no"), "y": .double(1)])
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Point.self, from: v) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Int8.self, from: .int(300)) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(UInt.self, from: .int(-1)) }
        #expect(throws: EncodingError.self) { try ValueEncoder().encode(UInt64.max) }
        // Exact conversions between ints and doubles are allowed.
        #expect(try ValueDecoder().decode(Int.self, from: .double(3)) == 3)
        #expect(try ValueDecoder().decode(Double.self, from: .int(3)) == 3)
    }

    @Test("Value orders totally: numbers numerically, then strings")
    func ordering() {
        let values: [Value] = ["b", .int(3), .double(2.5), .null, .bool(true), "a", .int(-1)]
        #expect(values.sorted() == [.null, .bool(true), .int(-1), .double(2.5), .int(3), "a", "b"])
    }

    @Test("Value is Codable with other coders too")
    func jsonShape() throws {
        let v: Value = .record(["n": .int(1), "l": .list([.string("x"), .null])])
        let json = try JSONEncoder().encode(v)
        #expect(try JSONDecoder().decode(Value.self, from: json) == v)
    }
}
