//! What limits are made of: a key's limits, a team's budget, the estimate a request reserves,
//! and the claims, holds and counts the limit stores keep.

use super::BudgetPeriod;

/// A key's own limits (its team's budget is a `TeamBudget`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KeyLimits {
    /// Requests per window.
    pub rpm: Option<i64>,
    /// Tokens per window.
    pub tpm: Option<i64>,
    pub token_budget: Option<i64>,
    /// CNY.
    pub cost_budget: Option<f64>,
    pub budget_period: BudgetPeriod,
}

impl KeyLimits {
    pub fn has_rate_limits(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }

    pub fn has_budget(&self) -> bool {
        self.token_budget.is_some() || self.cost_budget.is_some()
    }
}

/// A team's budgets, shared by all of its keys.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TeamBudget {
    pub token_budget: Option<i64>,
    pub cost_budget: Option<f64>,
    pub period: BudgetPeriod,
}

/// What a request is expected to use, reserved before it goes upstream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub tokens: i64,
    /// CNY; `None` when the model has no price (cost budgets then count it as 0).
    pub cost: Option<f64>,
}

/// A budget a request must fit: one scope (`key:<id>` or `team:<team>`) in one period.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub scope: String,
    pub period_start: i64,
    pub token_budget: Option<i64>,
    pub cost_budget: Option<f64>,
    /// How long the spent counter is kept (0: forever); used by Redis.
    pub ttl_secs: i64,
}

/// What a rate window holds after a check: `admitted` tells whether this request was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    pub admitted: bool,
    pub requests: i64,
    pub tokens: i64,
}

/// A reservation refused: which claim did not fit, and what its scope has spent so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refusal {
    pub claim: usize,
    pub spent_tokens: i64,
    pub spent_cost: f64,
}

/// A reservation to make: the estimate, held until settled or until `expires_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Hold<'a> {
    pub request_id: &'a str,
    pub tokens: i64,
    pub cost: f64,
    pub now_ms: i64,
    pub expires_ms: i64,
}

/// Whether a claim still fits: spent plus held plus this estimate within every budget set.
pub fn fits(claim: &Claim, used_tokens: i64, used_cost: f64, tokens: i64, cost: f64) -> bool {
    let tokens_fit = claim
        .token_budget
        .is_none_or(|budget| used_tokens.saturating_add(tokens) <= budget);
    let cost_fits = claim
        .cost_budget
        .is_none_or(|budget| used_cost < budget && used_cost + cost <= budget);
    tokens_fit && cost_fits
}
