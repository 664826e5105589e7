extension StringProtocol {
    /// The text without leading and trailing whitespace and newlines. Foundation's
    /// `trimmingCharacters(in:)` would link Foundation proper (and its 30 MB of ICU data)
    /// into every Lambda bootstrap; FoundationEssentials has none.
    package func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

extension StringProtocol {
    /// The first occurrence of `text`, compared byte by byte in UTF-8 (no Unicode
    /// equivalence: for protocol text). The standard library's `firstRange(of:)` and
    /// `contains(_:)` on strings are _StringProcessing's, which brings its regex engine
    /// (1.1 MB) into every Lambda bootstrap.
    package func utf8Range(of text: some StringProtocol) -> Range<Index>? {
        let needle = Array(text.utf8)
        guard let first = needle.first else { return startIndex..<startIndex }
        var i = utf8.startIndex
        while let start = utf8[i...].firstIndex(of: first) {
            var end = start
            var matched = 0
            while matched < needle.count, end != utf8.endIndex, utf8[end] == needle[matched] {
                end = utf8.index(after: end)
                matched += 1
            }
            if matched == needle.count { return start..<end }
            i = utf8.index(after: start)
        }
        return nil
    }

    /// Whether `text` occurs in this string (``utf8Range(of:)``).
    package func containsUTF8(_ text: some StringProtocol) -> Bool { utf8Range(of: text) != nil }

    /// Every occurrence of `text` replaced by `replacement` (``utf8Range(of:)``).
    package func replacingUTF8(_ text: some StringProtocol, with replacement: some StringProtocol) -> String {
        var rest = self[...]
        var out = ""
        while !text.isEmpty, let found = rest.utf8Range(of: text) {
            out += rest[..<found.lowerBound]
            out += replacement
            rest = rest[found.upperBound...]
        }
        return out + rest
    }
}
