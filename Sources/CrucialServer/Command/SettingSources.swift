internal import Yams

/// Where `crucial-server`'s settings come from, the strongest first, as etcd and Redis users
/// expect: the command line, then a `CRUCIAL_*` environment variable per flag, then a YAML
/// config file (`--config FILE` or `$CRUCIAL_CONFIG`), then the defaults.
///
/// The variable of `--max-frame-size` is `CRUCIAL_MAX_FRAME_SIZE`; the file's keys are the
/// flags' names:
///
/// ```yaml
/// port: 7420
/// data-dir: /var/lib/crucial
/// fsync: always
/// plugin: [/opt/crucial/libScores.so]     # a repeatable flag takes a list
/// fast-failover: false                     # a flag takes true or false
/// ```
///
/// A repeatable flag's variable is a comma-separated list, and a flag's is `true` or `false`
/// (`1`/`0`, `yes`/`no`). The resolved settings are command-line arguments again, parsed and
/// validated as the command line is, so each error names its flag; a file's unknown key or a
/// value of the wrong shape is refused naming the file and the key.
package enum SettingSources {
    /// How a flag takes its value.
    package enum Kind: Sendable, Equatable {
        case value
        /// May be given several times (`--plugin`).
        case repeated
        /// On or off: `--NAME` / `--no-NAME`.
        case flag
        /// A secret or its file: its variable (`CRUCIAL_AUTH_TOKEN`, `CRUCIAL_AUTH_TOKEN_FILE`,
        /// ...) is read where the secret is loaded, and read again on SIGHUP; a file may set it.
        case secret
    }

    /// Every flag of `crucial-server` but `--help`, `--version` and `--config`
    /// (`SettingSourcesTests` checks this against the command's own help dump).
    package static let flags: [String: Kind] = [
        "host": .value, "port": .value, "log-level": .value, "max-frame-size": .value, "threads": .value,
        "auth-token": .secret, "auth-token-file": .secret, "credentials": .value, "server-id": .value, "plugin": .repeated,
        "admin-token": .secret, "admin-token-file": .secret, "tls-cert": .value, "tls-key": .value, "tls-ca": .value,
        "metrics-port": .value, "metrics-host": .value, "log-format": .value, "max-connections": .value, "max-in-flight": .value,
        "max-waiters-per-object": .value, "max-objects-per-session": .value, "max-state-bytes": .value, "idle-timeout": .value,
        "handshake-timeout": .value, "write-timeout": .value, "plugin-dir": .value, "data-dir": .value, "fsync": .value,
        "compact-after": .value, "etcd": .value, "node-id": .value, "advertise": .value, "rf": .value, "lease-ttl": .value,
        "fast-failover": .flag, "cluster": .value, "session-lease": .value,
    ]

    /// The environment variable of `flag`: `CRUCIAL_` and the name in upper snake case.
    package static func variable(of flag: String) -> String {
        "CRUCIAL_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// Why a setting was refused.
    package struct Failure: Error, Equatable, CustomStringConvertible {
        package let description: String
        init(_ description: String) { self.description = description }
    }

    /// The command line with what the environment and the config file add for the flags it
    /// does not give. `readFile` reads the config file (a test hands in its text).
    package static func arguments(
        commandLine: [String], environment: [String: String], readFile: (String) throws -> String
    ) throws(Failure) -> [String] {
        let given = flagsGiven(in: commandLine)
        var added: [String] = []
        var fromEnvironment: Set<String> = []
        for (flag, kind) in flags.sorted(by: { $0.key < $1.key }) where !given.contains(flag) && kind != .secret {
            let name = variable(of: flag)
            guard let raw = environment[name], !raw.isEmpty else { continue }
            fromEnvironment.insert(flag)
            switch kind {
            case .value, .secret: added += ["--\(flag)", raw]
            case .repeated:
                for item in raw.split(separator: ",") where !item.trimmingWhitespace().isEmpty { added += ["--\(flag)", item.trimmingWhitespace()] }
            case .flag:
                guard let on = boolean(raw) else { throw Failure("$\(name) must be true or false, got \"\(raw)\"") }
                added.append(on ? "--\(flag)" : "--no-\(flag)")
            }
        }
        guard let path = configPath(commandLine: commandLine, environment: environment) else { return added + commandLine }
        let text: String
        do { text = try readFile(path) } catch { throw Failure("--config: cannot read \(path): \(error)") }
        let settings = try fileSettings(text, path: path)
        for (flag, value) in settings.sorted(by: { $0.key < $1.key }) where !given.contains(flag) && !fromEnvironment.contains(flag) {
            added += value
        }
        return added + commandLine
    }

    /// The config file `--config FILE` (or `--config=FILE`) or `$CRUCIAL_CONFIG` names.
    static func configPath(commandLine: [String], environment: [String: String]) -> String? {
        for (i, argument) in commandLine.enumerated() {
            if argument == "--config", i + 1 < commandLine.count { return commandLine[i + 1] }
            if argument.hasPrefix("--config=") { return String(argument.dropFirst("--config=".count)) }
        }
        return environment["CRUCIAL_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The flags a command line gives (`--NAME`, `--NAME=...`, `--no-NAME`).
    static func flagsGiven(in commandLine: [String]) -> Set<String> {
        var given: Set<String> = []
        for argument in commandLine where argument.hasPrefix("--") {
            var name = String(argument.dropFirst(2).prefix { $0 != "=" })
            if flags[name] == nil, name.hasPrefix("no-"), flags[String(name.dropFirst(3))] == .flag { name = String(name.dropFirst(3)) }
            given.insert(name)
        }
        return given
    }

    /// Each setting of a YAML config file, as the arguments that give it.
    static func fileSettings(_ text: String, path: String) throws(Failure) -> [String: [String]] {
        let document: Any?
        do { document = try Yams.load(yaml: text) } catch { throw Failure("--config \(path) is not valid YAML: \(error)") }
        guard let document else { return [:] }  // an empty file sets nothing
        guard let mapping = document as? [String: Any] else {
            throw Failure("--config \(path) must be a mapping of flag names to values (such as `port: 7420`)")
        }
        var out: [String: [String]] = [:]
        for (key, value) in mapping {
            guard let kind = flags[key] else {
                let hint = flags.keys.filter { $0.replacingOccurrences(of: "-", with: "_") == key }.first.map { " (did you mean \($0)?)" } ?? ""
                throw Failure("--config \(path): unknown setting \"\(key)\"\(hint); the keys are crucial-server's flag names (crucial-server --help)")
            }
            func scalar(_ v: Any) throws(Failure) -> String {
                switch v {
                case let s as String: return s
                case let b as Bool: return b ? "true" : "false"
                case let i as Int: return String(i)
                case let d as Double: return String(d)
                default: throw Failure("--config \(path): \"\(key)\" must be a single value, got \(v)")
                }
            }
            switch kind {
            case .value, .secret:
                out[key] = ["--\(key)", try scalar(value)]
            case .repeated:
                let items = (value as? [Any]) ?? [value]
                var arguments: [String] = []
                for item in items { arguments += ["--\(key)", try scalar(item)] }
                out[key] = arguments
            case .flag:
                guard let on = value as? Bool else { throw Failure("--config \(path): \"\(key)\" must be true or false, got \(value)") }
                out[key] = [on ? "--\(key)" : "--no-\(key)"]
            }
        }
        return out
    }

    static func boolean(_ raw: String) -> Bool? {
        switch raw.lowercased() {
        case "1", "true", "yes", "on": true
        case "0", "false", "no", "off": false
        default: nil
        }
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
