extension StringProtocol {
    /// The text without leading and trailing whitespace and newlines. Foundation's
    /// `trimmingCharacters(in:)` would link Foundation proper (and its 30 MB of ICU data)
    /// into every Lambda bootstrap; FoundationEssentials has none.
    package func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
