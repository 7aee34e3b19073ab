//! What clients see of limits: OpenAI's `x-ratelimit-*` headers, and 429 answers shaped like
//! OpenAI's (`rate_limit_exceeded` with type `requests` or `tokens`; `insufficient_quota`).

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, Utc};

use crate::domain::{BudgetPeriod, Claim, Refusal, WindowCount};
use crate::error::{ApiError, ErrorCode};
use crate::keys::ApiKey;

/// The rate-limit state a response reports, for the limits the key has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    /// (limit, remaining) of requests and of tokens in the current window.
    requests: Option<(i64, i64)>,
    tokens: Option<(i64, i64)>,
    reset_ms: i64,
}

impl RateHeaders {
    pub fn new(key: &ApiKey, count: WindowCount, reset_ms: i64) -> Self {
        Self {
            requests: key
                .limits
                .rpm
                .map(|limit| (limit, (limit - count.requests).max(0))),
            tokens: key
                .limits
                .tpm
                .map(|limit| (limit, (limit - count.tokens).max(0))),
            reset_ms: reset_ms.max(0),
        }
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        let Ok(reset) = HeaderValue::from_str(&reset_text(self.reset_ms)) else {
            return;
        };
        for (names, values) in [
            (&REQUESTS_HEADERS, self.requests),
            (&TOKENS_HEADERS, self.tokens),
        ] {
            let Some((limit, remaining)) = values else {
                continue;
            };
            let [limit_name, remaining_name, reset_name] = names;
            headers.insert(limit_name, HeaderValue::from(limit));
            headers.insert(remaining_name, HeaderValue::from(remaining));
            headers.insert(reset_name, reset.clone());
        }
    }
}

static REQUESTS_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-requests"),
    HeaderName::from_static("x-ratelimit-remaining-requests"),
    HeaderName::from_static("x-ratelimit-reset-requests"),
];
static TOKENS_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-tokens"),
    HeaderName::from_static("x-ratelimit-remaining-tokens"),
    HeaderName::from_static("x-ratelimit-reset-tokens"),
];

/// What an admitted request carries back: the headers for its successful response.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    pub(super) rate: Option<RateHeaders>,
}

impl Admission {
    /// Adds `x-ratelimit-*` when the key has `rpm` or `tpm`.
    pub fn apply_headers(&self, headers: &mut HeaderMap) {
        if let Some(rate) = &self.rate {
            rate.apply(headers);
        }
    }
}

/// OpenAI's duration style: `1.2s`, `6m0s`, `20ms`.
fn reset_text(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let minutes = ms / 60_000;
    let seconds = (ms % 60_000) as f64 / 1000.0;
    let seconds = format!("{seconds:.1}");
    let seconds = seconds.trim_end_matches(".0");
    if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

fn ceil_secs(ms: i64) -> u64 {
    u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000).max(1)
}

pub(super) fn rate_refusal(
    key: &ApiKey,
    count: WindowCount,
    tokens: i64,
    reset_ms: i64,
) -> ApiError {
    let requests_full = key.limits.rpm.is_some_and(|rpm| count.requests >= rpm);
    if let (false, Some(tpm)) = (requests_full, key.limits.tpm) {
        if tokens > tpm {
            let message = format!(
                "Request too large: it may use {tokens} tokens, more than this key's limit of \
                 {tpm} tokens per window."
            );
            return ApiError::new(ErrorCode::TokenRateExceeded, message).no_retry();
        }
        let message = format!(
            "Rate limit reached for tokens: limit {tpm}, used {}, requested {tokens}. Please \
             try again in {}.",
            count.tokens,
            reset_text(reset_ms)
        );
        return ApiError::new(ErrorCode::TokenRateExceeded, message)
            .retry_after(ceil_secs(reset_ms));
    }
    let message = format!(
        "Rate limit reached for requests: limit {}, used {}. Please try again in {}.",
        key.limits.rpm.unwrap_or(0),
        count.requests,
        reset_text(reset_ms)
    );
    ApiError::new(ErrorCode::RequestRateExceeded, message).retry_after(ceil_secs(reset_ms))
}

pub(super) fn budget_refusal(claim: &Claim, refusal: Refusal, now: DateTime<Utc>) -> ApiError {
    let whose = match claim.scope.split_once(':') {
        Some(("team", team)) => format!("The team `{team}`"),
        _ => "This API key".to_owned(),
    };
    let budget = match (claim.token_budget, claim.cost_budget) {
        (Some(tokens), _) if refusal.spent_tokens >= tokens || claim.cost_budget.is_none() => {
            format!(
                "its token budget ({} of {tokens} tokens used)",
                refusal.spent_tokens
            )
        }
        (_, Some(cost)) => format!(
            "its cost budget ({:.4} of {cost} CNY used)",
            refusal.spent_cost
        ),
        _ => "its budget".to_owned(),
    };
    let period = claim_period(claim, now);
    let mut error = ApiError::new(
        ErrorCode::InsufficientQuota,
        format!("{whose} has exceeded {budget}{}.", period.0),
    )
    .no_retry();
    if let Some(seconds) = period.1 {
        error = error.retry_after(seconds);
    }
    error
}

/// The period's wording and the seconds until it starts over, from the claim's period start.
fn claim_period(claim: &Claim, now: DateTime<Utc>) -> (&'static str, Option<u64>) {
    let period = if claim.period_start == 0 {
        BudgetPeriod::None
    } else if BudgetPeriod::Daily.start(now) == claim.period_start {
        BudgetPeriod::Daily
    } else {
        BudgetPeriod::Monthly
    };
    let text = match period {
        BudgetPeriod::None => "",
        BudgetPeriod::Daily => " for today (UTC)",
        BudgetPeriod::Monthly => " for this month (UTC)",
    };
    let wait = period
        .next_start(now)
        .and_then(|next| u64::try_from(next - now.timestamp()).ok());
    (text, wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_read_like_openai() {
        assert_eq!(reset_text(1200), "1.2s");
        assert_eq!(reset_text(60_000), "1m0s");
        assert_eq!(reset_text(59_950), "60s");
        assert_eq!(reset_text(20), "20ms");
        assert_eq!(reset_text(6_000), "6s");
        assert_eq!(ceil_secs(1200), 2);
        assert_eq!(ceil_secs(0), 1);
    }
}
