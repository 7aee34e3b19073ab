//! The request metrics: their names, histogram buckets, and the few calls that record them.
//! Which layer records what: `observe` counts every request and times a whole answer once it
//! leaves; the usage ticket times a stream (first frame, end) and counts a row's tokens; the
//! upstream error maps count Zhipu's error codes.
//!
//! - `glm_gateway_requests_total{route,status,alias,team}`: `route` is the matched route
//!   template (`unmatched` when none), `alias` the model label (`labels::ModelLabels`) and
//!   `team` the key's team; both empty when the request had no key or named no model.
//! - `glm_gateway_request_duration_seconds{route}`: arrival to the whole answer (a stream's
//!   end as the relay sees it).
//! - `glm_gateway_upstream_duration_seconds{route}`: time with an upstream call open (a stream's
//!   until its upstream ended); requests that called the upstream only.
//! - `glm_gateway_overhead_seconds{route}`: the gateway's own time. A whole answer: the request
//!   duration minus the upstream time. A stream: the time to its first frame for the client
//!   minus the upstream's time to its first bytes. Requests that called the upstream only.
//! - `glm_gateway_time_to_first_token_seconds{route,alias}`: a stream's arrival to its first
//!   frame for the client.
//! - `glm_gateway_tokens_total{team,model,kind}`: a row's tokens, `kind` prompt, completion,
//!   cached (part of prompt) or reasoning (part of completion); `model` the GLM model label.
//! - `glm_gateway_upstream_errors_total{code}`: upstream error answers (every attempt), by
//!   Zhipu's code (see `upstream::zhipu_error::count_error`).

use std::time::Duration;

use metrics::SharedString;

use super::clock::RequestClock;
use super::labels::{status_label, NONE};

pub const REQUESTS: &str = "glm_gateway_requests_total";
pub const REQUEST_DURATION: &str = "glm_gateway_request_duration_seconds";
pub const UPSTREAM_DURATION: &str = "glm_gateway_upstream_duration_seconds";
pub const OVERHEAD: &str = "glm_gateway_overhead_seconds";
pub const TIME_TO_FIRST_TOKEN: &str = "glm_gateway_time_to_first_token_seconds";
pub const TOKENS: &str = "glm_gateway_tokens_total";
pub const UPSTREAM_ERRORS: &str = "glm_gateway_upstream_errors_total";

/// Seconds. Whole answers and streams last from milliseconds to many minutes.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];
/// Seconds. The gateway's own share is well under a millisecond when all is well.
const OVERHEAD_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 1.0,
];
/// Seconds. A first token comes after a few hundred milliseconds to tens of seconds.
const FIRST_TOKEN_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// Each histogram with its buckets (without them the exporter would render summaries).
pub const HISTOGRAMS: &[(&str, &[f64])] = &[
    (REQUEST_DURATION, DURATION_BUCKETS),
    (UPSTREAM_DURATION, DURATION_BUCKETS),
    (OVERHEAD, OVERHEAD_BUCKETS),
    (TIME_TO_FIRST_TOKEN, FIRST_TOKEN_BUCKETS),
];

/// What the usage layer learnt of a request, for its count: put on the response as an
/// extension, read by `observe`.
#[derive(Clone)]
pub struct RequestLabels {
    pub alias: SharedString,
    pub team: SharedString,
}

/// Counts a request as its response leaves (status 499 when the client left before), and
/// times it unless it is a stream.
pub fn request_answered(clock: &RequestClock, status: u16, labels: Option<&RequestLabels>) {
    let (alias, team) = labels.map_or((NONE, NONE), |l| (l.alias.clone(), l.team.clone()));
    let route = clock.route().clone();
    metrics::counter!(REQUESTS, "route" => route.clone(), "status" => status_label(status),
        "alias" => alias, "team" => team)
    .increment(1);
    if clock.is_stream() {
        return;
    }
    let total = clock.elapsed();
    metrics::histogram!(REQUEST_DURATION, "route" => route.clone()).record(total);
    if let Some(upstream) = clock.upstream() {
        metrics::histogram!(UPSTREAM_DURATION, "route" => route.clone()).record(upstream);
        metrics::histogram!(OVERHEAD, "route" => route).record(total.saturating_sub(upstream));
    }
}

/// A stream's first frame is on its way to the client.
pub fn stream_first_frame(clock: &RequestClock, alias: SharedString) {
    let route = clock.route().clone();
    let first = clock.elapsed();
    metrics::histogram!(TIME_TO_FIRST_TOKEN, "route" => route.clone(), "alias" => alias)
        .record(first);
    if let Some(upstream) = clock.upstream_to_first_byte() {
        metrics::histogram!(OVERHEAD, "route" => route).record(first.saturating_sub(upstream));
    }
}

/// A stream ended (its row is being written).
pub fn stream_ended(clock: &RequestClock) {
    let route = clock.route().clone();
    metrics::histogram!(REQUEST_DURATION, "route" => route.clone()).record(clock.elapsed());
    if let Some(upstream) = clock.upstream_to_now() {
        metrics::histogram!(UPSTREAM_DURATION, "route" => route).record(upstream);
    }
}

/// A row's token counts.
pub struct Tokens {
    pub prompt: i64,
    pub completion: i64,
    pub cached: i64,
    pub reasoning: i64,
}

pub fn tokens_counted(team: &SharedString, model: &SharedString, tokens: &Tokens) {
    let kinds = [
        ("prompt", tokens.prompt),
        ("completion", tokens.completion),
        ("cached", tokens.cached),
        ("reasoning", tokens.reasoning),
    ];
    // Kinds at 0 (most rows have no cached or reasoning tokens) cost no registry lookup.
    for (kind, count) in kinds.into_iter().filter(|(_, count)| *count > 0) {
        let count = u64::try_from(count).unwrap_or(0);
        metrics::counter!(TOKENS, "team" => team.clone(), "model" => model.clone(), "kind" => kind)
            .increment(count);
    }
}

/// One upstream error answer, by its label (`upstream::zhipu_error` chooses it).
pub fn upstream_error(code: SharedString) {
    metrics::counter!(UPSTREAM_ERRORS, "code" => code).increment(1);
}

/// Milliseconds, for logs.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
