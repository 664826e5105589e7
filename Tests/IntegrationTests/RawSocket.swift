import CrucialTesting
import CrucialTransport
import CrucialProcess
import CrucialClient
import CrucialCore
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP socket speaking raw bytes, to send what a well-behaved client never
/// would. Its waits for answers run off the cooperative pool (see `offCooperativePool`);
/// one task uses it at a time.
final class RawSocket: @unchecked Sendable {
    private let fd: Int32

    /// - Parameter receiveBuffer: a small one makes a client that does not read fill up fast.
    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CrucialError(.connectionFailed, "socket() failed") }
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        // A server that stops reading must not block the test forever.
        var sendTimeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw CrucialError(.connectionFailed, "connect() failed: \(errno)") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends `bytes`; false when the peer stopped taking them (for a second) or went away.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    func send(_ frame: Frame) {
        var buffer = ByteBuffer()
        WireCodec.encode(frame, into: &buffer)
        send(Array(buffer.readableBytesView))
    }

    /// A length-prefixed frame carrying `payload` as is.
    func sendFrame(payload: [UInt8]) {
        let n = UInt32(payload.count)
        send([UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)] + payload)
    }

    private func read(_ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n <= 0 { return nil }
            got += n
        }
        return out
    }

    /// The next frame, or nil when the server closed the connection (or 10 s passed).
    func receive() async throws -> Frame? {
        try await offCooperativePool { try self.receiveBlocking() }
    }

    private func receiveBlocking() throws -> Frame? {
        guard let header = read(4) else { return nil }
        let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard let payload = read(length) else { return nil }
        return try WireCodec.decode(ByteBuffer(bytes: payload))
    }

    /// True when the server has closed its side.
    func isClosedByPeer() async -> Bool { await offCooperativePool { self.read(1) == nil } }

    /// Reads and drops everything until the server closes (true) or nothing comes for 10 s.
    func drainUntilClosed() async -> Bool {
        await offCooperativePool { self.drainBlocking() }
    }

    private func drainBlocking() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }

    /// The handshake, proving `secret` when the server challenges.
    func hello(secret: String = "") async throws {
        let hello = Hello(clientName: "raw", clientNonce: HandshakeAuth.nonce())
        send(.hello(hello))
        var answer = try await receive()
        if case .challenge(let nonce)? = answer {
            let proof =
                secret.isEmpty
                ? [] : HandshakeAuth.clientProof(secret: secret, clientNonce: hello.clientNonce, serverNonce: nonce, clientName: "raw")
            send(.authenticate(proof: proof))
            answer = try await receive()
        }
        guard case .helloReply(let r)? = answer, r.error == nil else {
            throw CrucialError(.connectionFailed, "handshake failed: \(String(describing: answer))")
        }
    }
}

extension Frame {
    var errorCode: CrucialError.Code? {
        if case .result(let r) = self, case .error(let e) = r.outcome { return e.code }
        return nil
    }
}
