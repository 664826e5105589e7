public import CrucialCore
internal import FoundationEssentials
package import NIOSSL

/// TLS for a client's connections to Crucial servers started with `--tls-cert`.
///
/// ```swift
/// var configuration = CrucialClient.Configuration(servers: ["db.internal:7420"])
/// configuration.tls = try ClientTLS(trustingFile: "/etc/crucial/ca.pem")
/// ```
///
/// From the environment: `CRUCIAL_TLS_CA=/path/ca.pem` (trust that certificate or CA) or
/// `CRUCIAL_TLS=1` (trust the system's roots).
public struct ClientTLS: Sendable, Hashable, Codable {
    /// PEM certificates to trust: the server's own self-signed certificate, or the CA
    /// that signed it. nil = the system's roots.
    public var trustRootsPEM: String?
    /// The name the server's certificate must carry; nil = the host of each address (an
    /// IP address is checked against the certificate's IP entries).
    public var serverHostname: String?

    /// TLS trusting `trustRootsPEM` (nil: the system's roots), checking `serverHostname` (nil: each address's host).
    public init(trustRootsPEM: String? = nil, serverHostname: String? = nil) {
        self.trustRootsPEM = trustRootsPEM
        self.serverHostname = serverHostname
    }

    /// Trusts the PEM certificates in `path`.
    public init(trustingFile path: String, serverHostname: String? = nil) throws(CrucialError) {
        guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CrucialError(.invalidArgument, "cannot read the TLS trust roots \(path)")
        }
        self.init(trustRootsPEM: pem, serverHostname: serverHostname)
    }

    /// The NIOSSL context connections share (loading roots is slow: make it once).
    package func makeContext() throws(CrucialError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        do {
            if let pem = trustRootsPEM {
                let certificates = try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
                guard !certificates.isEmpty else { throw CrucialError(.invalidArgument, "the TLS trust roots hold no PEM certificate") }
                configuration.trustRoots = .certificates(certificates)
            }
            return try NIOSSLContext(configuration: configuration)
        } catch let error as CrucialError {
            throw error
        } catch {
            throw CrucialError(.invalidArgument, "cannot set up TLS: \(error)")
        }
    }
}
