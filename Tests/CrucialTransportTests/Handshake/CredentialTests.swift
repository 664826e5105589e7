import CrucialCore
import CrucialTransport
import Testing

@Suite("Credentials")
struct CredentialTests {
    @Test("A credentials file: NAME client|admin SECRET per line; comments and blank lines skipped; mistakes name their line")
    func credentialsFile() throws {
        let parsed = try Credential.parseFile("# apps\nanalytics client s3cr3t with spaces\n\n  ops admin x\n", path: "f")
        #expect(parsed == [Credential(name: "analytics", secret: "s3cr3t with spaces"), Credential(name: "ops", secret: "x", isAdmin: true)])
        #expect(throws: CrucialError(.invalidArgument, "f:2: expected `NAME client|admin SECRET`")) {
            try Credential.parseFile("a client x\nb root y\n", path: "f")
        }
        #expect(throws: CrucialError(.invalidArgument, "f:2: credential a is named twice")) {
            try Credential.parseFile("a client x\na admin y\n", path: "f")
        }
    }
}
