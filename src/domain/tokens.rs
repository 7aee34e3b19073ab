//! Token counts as the upstream reports them (the readers of its `usage` objects are in
//! `usage::tap`).

/// Token counts of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub prompt: i64,
    pub completion: i64,
    pub total: i64,
    pub cached: i64,
    /// Completion tokens spent on reasoning, when the upstream says (metrics only; the row
    /// has no column for them).
    pub reasoning: i64,
}

impl TokenUsage {
    /// A rough count for text the upstream gave no usage for: about three characters a token
    /// (English runs near four, Chinese near one or two), never zero for non-empty text.
    pub fn estimate(chars: usize) -> i64 {
        i64::try_from(chars.div_ceil(3)).unwrap_or(i64::MAX)
    }

    /// Adds another call's counts (a request served by several upstream calls).
    pub fn add(&mut self, other: Self) {
        self.prompt += other.prompt;
        self.completion += other.completion;
        self.total += other.total;
        self.cached += other.cached;
        self.reasoning += other.reasoning;
    }
}
