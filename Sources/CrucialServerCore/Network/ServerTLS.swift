internal import CrucialTransport
internal import Foundation
internal import NIOSSL

/// TLS for a server's client and peer connections.
public struct ServerTLS: Sendable, Equatable {
    /// PEM file with the server's certificate (then any intermediates).
    public var certificatePath: String
    /// PEM file with its private key.
    public var privateKeyPath: String
    /// PEM certificates this server trusts when it connects to the other members of its
    /// cluster; nil = its own certificate (one self-signed certificate for the cluster).
    public var trustRootsPath: String?

    /// TLS from PEM files; `trustRootsPath`: the CA members check each other's certificates with.
    public init(certificatePath: String, privateKeyPath: String, trustRootsPath: String? = nil) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.trustRootsPath = trustRootsPath
    }

    func makeServerContext() throws(CrucialError) -> NIOSSLContext {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
            guard !chain.isEmpty else { throw CrucialError(.invalidArgument, "\(certificatePath) holds no PEM certificate") }
            let key = try NIOSSLPrivateKey(file: privateKeyPath, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            return try NIOSSLContext(configuration: configuration)
        } catch let error as CrucialError {
            throw error
        } catch {
            throw CrucialError(
                .invalidArgument, "cannot use the TLS certificate \(certificatePath) with key \(privateKeyPath): \(error)")
        }
    }

    /// How this server, as a client of its peers, checks them.
    func peerTLS() throws(CrucialError) -> ClientTLS {
        try ClientTLS(trustingFile: trustRootsPath ?? certificatePath)
    }
}
