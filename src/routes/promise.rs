//! Keeping an emulated promise (`json_schema`, a forced `tool_choice`) on a plain chat answer:
//! the answer is checked; one that breaks the promise gets up to `repair_attempts` repair
//! calls, whose usage counts in the row. A still-broken answer is returned as it is, marked by
//! `x-glm-gateway-validation: failed` and in the row's `emulated` column.

use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::{Map, Value};

use crate::config::EmulationSwitches;
use crate::error::ApiResult;
use crate::openai::{from_glm, Emulation};
use crate::state::AppState;
use crate::usage::{Tap, TokenUsage, UsageTicket};

/// How the check of a plain answer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Kept,
    Repaired,
    Invalid,
}

/// Returns the answer to send: the first that keeps the promise, else the last one tried.
pub async fn keep_promise(
    state: &AppState,
    promise: &Emulation,
    body: &Map<String, Value>,
    mut answer: Value,
    switches: EmulationSwitches,
    tap: &mut Tap,
) -> ApiResult<(Value, Checked)> {
    let mut errors = match promise.validate(&answer) {
        Ok(()) => return Ok((answer, Checked::Kept)),
        Err(errors) => errors,
    };
    for _ in 0..switches.repair_attempts {
        let repair = promise.repair_body(body, &answer, &errors);
        let upstream = state.zhipu.post_json("/chat/completions", &repair, false);
        answer = from_glm(upstream.await?.json().await?)?;
        let usage = answer.get("usage").and_then(TokenUsage::from_value);
        tap.add_tokens(usage.unwrap_or_default());
        match promise.validate(&answer) {
            Ok(()) => return Ok((answer, Checked::Repaired)),
            Err(again) => errors = again,
        }
    }
    tracing::info!(
        kind = promise.header_value(),
        errors = errors.len(),
        "an emulated promise was not kept"
    );
    Ok((answer, Checked::Invalid))
}

/// Makes the rewrite visible: the response header, and the row's `emulated` column with the
/// check's outcome (streams are not checked).
pub fn mark(
    response: &mut Response,
    ticket: &UsageTicket,
    promise: &Emulation,
    checked: Option<Checked>,
) {
    let kind = promise.header_value();
    let headers = response.headers_mut();
    headers.insert("x-glm-gateway-emulated", HeaderValue::from_static(kind));
    let noted = match checked {
        Some(Checked::Repaired) => format!("{kind}:repaired"),
        Some(Checked::Invalid) => {
            headers.insert(
                "x-glm-gateway-validation",
                HeaderValue::from_static("failed"),
            );
            format!("{kind}:invalid")
        }
        Some(Checked::Kept) | None => kind.to_owned(),
    };
    ticket.set_emulated(noted);
}
