import CrucialCore
import CrucialShared
import Testing

/// A second build of a type whose first build had only `words`.
@Shared(name: "test.TopWords")
final class TopWordsV2 {
    var words: [String: Int] = [:]
    var merges = 0
    var label: String? = "unnamed"
    var limits: [Int] = [10, 100]
    func merge(_ counts: [String: Int]) {
        merges += 1
        for (w, n) in counts { words[w, default: 0] += n }
    }
}

/// The same addition in a type that decodes itself: its own keys, no defaults filled in.
@Shared(name: "test.Keyed")
struct KeyedV2 {
    var total: Int
    var merges = 0
    enum CodingKeys: String, CodingKey {
        case total = "t"
        case merges = "m"
    }
}

@Shared(name: "test.Undefaulted")
struct Undefaulted {
    var n: Int
    var m = 0
}

@Suite("A state written before a property was added decodes with the property's declared value")
struct StateDefaultsTests {
    @Test("A missing key takes its declared value; a present one, an Optional's absence and other keys are kept")
    func filledIn() throws {
        let old = Value.record(["words": .record(["a": .int(2)])])
        let object = try TopWordsV2.crucialDecode(old)
        #expect(object.words == ["a": 2])
        #expect(object.merges == 0)
        #expect(object.limits == [10, 100])
        // A nil Optional is left out of a state: its missing key is nil, not the declared value.
        #expect(object.label == nil)

        let newer = Value.record(["words": .record([:]), "merges": .int(7), "label": .string("x"), "limits": .ints([1])])
        let kept = try TopWordsV2.crucialDecode(newer)
        #expect((kept.merges, kept.label, kept.limits) == (7, "x", [1]))
        // A state the new build writes decodes back as it was.
        object.merge(["b": 1])
        let again = try TopWordsV2.crucialDecode(try object.crucialEncode())
        #expect((again.words, again.merges, again.label) == (["a": 2, "b": 1], 1, nil))
    }

    @Test("A type with its own CodingKeys is not filled in: a missing key is refused, naming it")
    func selfDecodingRefused() throws {
        #expect(KeyedV2.crucialStateDefaults.isEmpty)
        let error = #expect(throws: CrucialError.self) { try KeyedV2.crucialDecode(.record(["t": .int(3)])) }
        #expect(error?.code == .badInitialState)
        #expect(error?.message.contains("\"m\"") == true, "\(error?.message ?? "")")
        #expect(try KeyedV2.crucialDecode(.record(["t": .int(3), "m": .int(1)])).merges == 1)
    }

    @Test("A state that is not a record, or lacks a property without a value, is refused as before")
    func otherStates() throws {
        #expect(throws: CrucialError.self) { try TopWordsV2.crucialDecode(.int(1)) }
        #expect(throws: CrucialError.self) { try Undefaulted.crucialDecode(.record(["m": .int(1)])) }
        #expect(try Undefaulted.crucialDecode(.record(["n": .int(2)])).m == 0)
    }
}
