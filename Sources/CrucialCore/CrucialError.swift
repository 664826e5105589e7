/// The error every Crucial API throws: a precise ``Code`` and a message a user can act on.
///
/// Codes below 1000 travel on the wire (they mirror `ErrorCode` in
/// `Protocol/crucial.proto`); codes from 1000 on are raised by the client itself.
public struct CrucialError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The error codes of the protocol (docs/PROTOCOL.md lists them).
    public enum Code: Int32, Sendable, CaseIterable {
        case unspecified = 0
        case badFrame = 1
        case frameTooLarge = 2
        case unsupportedVersion = 3
        case handshakeRequired = 4
        case unauthenticated = 5
        case unknownType = 6
        case unknownMethod = 7
        case badArguments = 8
        case notFound = 9
        case badInitialState = 10
        case illegalState = 11
        case outOfRange = 12
        case brokenBarrier = 13
        case timeout = 14
        case wrongView = 15
        case userError = 16
        case shuttingDown = 17
        case `internal` = 18
        case badRequest = 19
        case resourceExhausted = 20
        /// Nothing was done and the call may be retried: the member cannot be sure of its
        /// view, or every copy of the object is on members that are away.
        case unavailable = 21
        /// The caller was built with another version of a user type (its method table's
        /// fingerprint) than the code the server runs for it: nothing was done.
        case typeVersionMismatch = 22
        /// Every copy of the object was on members that came back without their data: it is
        /// lost (or never existed: the cluster cannot tell). Nothing was done; every call is
        /// refused so, creating ones included, until an operator accepts the loss
        /// (`crucial cluster accept-loss`, or `crucial objects forget TYPE KEY`).
        case dataLoss = 23
        /// The client's run of cloud threads was cancelled because one of its threads failed
        /// (the message names it): nothing more of the run is served.
        case cancelled = 24

        // Client-side codes: never sent on the wire.
        /// No server could be reached.
        case connectionFailed = 1000
        /// The connection closed while the request was in flight, and retries ran out.
        case connectionLost = 1001
        /// A result could not be decoded into the type the proxy expected.
        case decodingFailed = 1002
        /// An argument could not be encoded.
        case encodingFailed = 1003
        /// The request is invalid before it is sent (e.g. a key containing NUL).
        case invalidArgument = 1004
        /// The server answered something the protocol does not allow.
        case protocolViolation = 1005
        /// A connection already has its limit of calls waiting for answers
        /// (`CrucialClient.Configuration.maxPendingCalls`): the call was not sent.
        case pendingLimit = 1006

        /// The code's name as in the protocol, e.g. `BAD_ARGUMENTS`.
        public var name: String {
            switch self {
            case .unspecified: "UNSPECIFIED"
            case .badFrame: "BAD_FRAME"
            case .frameTooLarge: "FRAME_TOO_LARGE"
            case .unsupportedVersion: "UNSUPPORTED_VERSION"
            case .handshakeRequired: "HANDSHAKE_REQUIRED"
            case .unauthenticated: "UNAUTHENTICATED"
            case .unknownType: "UNKNOWN_TYPE"
            case .unknownMethod: "UNKNOWN_METHOD"
            case .badArguments: "BAD_ARGUMENTS"
            case .notFound: "NOT_FOUND"
            case .badInitialState: "BAD_INITIAL_STATE"
            case .illegalState: "ILLEGAL_STATE"
            case .outOfRange: "OUT_OF_RANGE"
            case .brokenBarrier: "BROKEN_BARRIER"
            case .timeout: "TIMEOUT"
            case .wrongView: "WRONG_VIEW"
            case .userError: "USER_ERROR"
            case .shuttingDown: "SHUTTING_DOWN"
            case .internal: "INTERNAL"
            case .badRequest: "BAD_REQUEST"
            case .resourceExhausted: "RESOURCE_EXHAUSTED"
            case .unavailable: "UNAVAILABLE"
            case .typeVersionMismatch: "TYPE_VERSION_MISMATCH"
            case .dataLoss: "DATA_LOSS"
            case .cancelled: "CANCELLED"
            case .connectionFailed: "CONNECTION_FAILED"
            case .connectionLost: "CONNECTION_LOST"
            case .decodingFailed: "DECODING_FAILED"
            case .encodingFailed: "ENCODING_FAILED"
            case .invalidArgument: "INVALID_ARGUMENT"
            case .protocolViolation: "PROTOCOL_VIOLATION"
            case .pendingLimit: "PENDING_LIMIT"
            }
        }
    }

    /// What went wrong, as a code programs can test.
    public var code: Code
    /// What went wrong and what to do about it, for people.
    public var message: String

    /// An error with `code` and a message a user can act on.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `CODE_NAME: message`.
    public var description: String { "\(code.name): \(message)" }
}

extension CrucialError {
    /// A BAD_ARGUMENTS error.
    public static func badArguments(_ message: String) -> CrucialError { .init(.badArguments, message) }
}
