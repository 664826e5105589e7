@testable import CrucialCore
import Testing

/// The few string searches the bootstrap side does without _StringProcessing.
@Suite("UTF-8 string search")
struct StringSearchTests {
    @Test("utf8Range finds the first occurrence, after false starts; replacingUTF8 replaces every one; trimming drops both ends' whitespace")
    func search() {
        let text = "aab<Key>x&amp;y</Key> ünï"
        let open = text.utf8Range(of: "<Key>")
        #expect(open.map { text[$0] } == "<Key>")
        #expect(text.utf8Range(of: "ab<") .map { text[$0] } == "ab<")
        #expect(text.utf8Range(of: "ünï").map { text[$0] } == "ünï")
        #expect(text.utf8Range(of: "<Nope>") == nil)
        #expect(text.containsUTF8("&amp;") && !"".containsUTF8("a"))
        #expect("a&amp;b&amp;".replacingUTF8("&amp;", with: "&") == "a&b&")
        #expect("none here".replacingUTF8("x", with: "y") == "none here")
        #expect(" \t value \n".trimmingWhitespace() == "value")
    }
}
