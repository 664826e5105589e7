/// This release of Crucial for Swift: what every executable's `--version` prints, what the
/// servers report in `crucial_build_info`, and the top entry of CHANGELOG.md.
public enum CrucialVersion {
    /// The release, as semantic versioning has it (pre-1.0: the API may still change).
    public static let release = "0.9.0"

    /// The wire protocol's version: what a handshake's `Hello` sends (docs/PROTOCOL.md).
    public static var wireProtocol: UInt32 { crucialProtocolVersion }

    /// `0.9.0 (protocol 2)`, as `--version` prints it.
    public static var description: String { "\(release) (protocol \(wireProtocol))" }
}
