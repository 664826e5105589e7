internal import ArgumentParser
internal import CrucialTransport
internal import Foundation
internal import Logging
internal import UnixSignals

/// Where `crucial-server`'s secrets come from: read at start-up and again on every SIGHUP.
struct SecretSources: Sendable {
    var authToken: String?
    var authTokenFile: String?
    var adminToken: String?
    var adminTokenFile: String?
    var credentials: String?

    /// Every secret: --auth-token, --admin-token (or their files, or the environment variables
    /// of either) and --credentials.
    func load() throws -> (token: String?, admin: String?, more: [Credential]) {
        let token = try Self.secret("auth-token", value: authToken, file: authTokenFile)
        let admin = try Self.secret("admin-token", value: adminToken, file: adminTokenFile)
        var more: [Credential] = []
        if let credentials {
            guard let text = try? String(contentsOfFile: credentials, encoding: .utf8) else {
                throw ValidationError("--credentials: cannot read \(credentials)")
            }
            do { more = try Credential.parseFile(text, path: credentials) } catch { throw ValidationError("--credentials: \(error.message)") }
        }
        return (token, admin, more)
    }

    /// The secret of `--NAME` or `--NAME-file`, else of `$CRUCIAL_NAME` or the file
    /// `$CRUCIAL_NAME_FILE` names; nil (or empty) for none.
    static func secret(_ name: String, value: String?, file: String?) throws -> String? {
        let variable = "CRUCIAL_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
        if value != nil, file != nil { throw ValidationError("give --\(name) or --\(name)-file, not both") }
        if let value { return value.isEmpty ? nil : value }
        if let file { return try read(file, "--\(name)-file") }
        if let value = ProcessInfoEnvironment.get(variable), !value.isEmpty { return value }
        if let file = ProcessInfoEnvironment.get(variable + "_FILE"), !file.isEmpty { return try read(file, "$\(variable)_FILE") }
        return nil

        func read(_ path: String, _ source: String) throws -> String {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("\(source): cannot read \(path)")
            }
            // A file written by `echo` ends with a newline that is no part of the secret.
            let secret = String(text.reversed().drop(while: \.isWhitespace).reversed())
            guard !secret.isEmpty else { throw ValidationError("\(source): \(path) is empty") }
            return secret
        }
    }

    /// Every secret the flags give, as the server takes them.
    func allCredentials(of server: CrucialServer) throws -> [Credential] {
        let (token, admin, more) = try load()
        var configuration = server.configuration
        configuration.authToken = token
        configuration.adminToken = admin
        configuration.credentials = more
        return configuration.allCredentials
    }

    /// Reads the secrets again on every SIGHUP (the token files and `--credentials`, as
    /// `systemctl reload` asks) and gives them to `server`; a file that cannot be read or
    /// parsed leaves the secrets as they were and says why.
    func reloadingOnSIGHUP(_ server: CrucialServer, logger: Logger) -> Task<Void, Never> {
        Task { [self] in
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                do {
                    let credentials = try allCredentials(of: server)
                    server.reloadCredentials(credentials)
                    logger.notice("credentials reloaded (SIGHUP)", metadata: ["secrets": "\(credentials.count)"])
                } catch {
                    logger.error("credentials not reloaded (SIGHUP): the ones before stay", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
