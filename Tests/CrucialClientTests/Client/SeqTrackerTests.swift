@testable import CrucialClient
import Testing

@Suite("Sequence numbers")
struct SeqTrackerTests {
    @Test("ackedBelow moves past every answered seq, in any order of answers")
    func acked() {
        var t = SeqTracker()
        let (a, b, c) = (t.allocate(), t.allocate(), t.allocate())
        #expect((a, b, c) == (1, 2, 3) && t.ackedBelow == 1)
        t.complete(b)
        #expect(t.ackedBelow == 1, "seq 1 is still unanswered")
        t.complete(a)
        #expect(t.ackedBelow == 3)
        t.complete(c)
        t.complete(c)
        #expect(t.ackedBelow == 4)
    }
}
