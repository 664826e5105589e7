internal import Foundation
public import Logging

/// Writes each log record to standard error as one JSON object per line:
/// `{"ts":"2026-11-23T15:20:51.123Z","level":"notice","label":"crucial.server","msg":"...","connection":"42",...}`
/// with every metadata field at the top level, for log shippers.
public struct JSONLogHandler: LogHandler {
    /// Metadata on every line.
    public var metadata: Logger.Metadata = [:]
    /// The lowest level written.
    public var logLevel: Logger.Level = .info
    private let label: String

    /// A handler for `label`'s logger.
    public init(label: String) { self.label = label }

    /// One metadata entry.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one JSON line to standard output.
    public func log(event: LogEvent) {
        var record: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { record[key] = "\(value)" }
        record["ts"] = Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
        record["level"] = event.level.rawValue
        record["label"] = label
        record["msg"] = "\(event.message)"
        if event.level >= .error { record["source"] = "\(event.file):\(event.line)" }
        guard var line = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) else { return }
        line.append(0x0A)
        StandardStreams.error(String(decoding: line, as: UTF8.self))
    }
}
