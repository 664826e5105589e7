@testable import CrucialCore
import Testing

/// What the bootstrap side does to strings without Foundation proper.
@Suite("String trimming without Foundation")
struct StringTrimmingTests {
    @Test("trimmingWhitespace drops both ends' whitespace and newlines, and nothing inside")
    func trimming() {
        #expect(" \t value  x \n".trimmingWhitespace() == "value  x")
        #expect("   ".trimmingWhitespace() == "" && "".trimmingWhitespace() == "")
    }
}
