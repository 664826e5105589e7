import CrucialCore
import Testing

@Suite("Addresses")
struct AddressTests {
    @Test func parse() throws {
        #expect(try parseAddress("127.0.0.1:9") == ("127.0.0.1", 9))
        #expect(try parseAddress("localhost") == ("localhost", CrucialDefaults.port))
        #expect(try parseAddress("[::1]:80") == ("::1", 80))
        #expect(throws: CrucialError.self) { try parseAddress("host:0") }
        #expect(throws: CrucialError.self) { try parseAddress("::1:80") }
        #expect(throws: CrucialError.self) { try parseAddress(" ") }
    }
}
