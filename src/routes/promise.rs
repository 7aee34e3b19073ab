//! Keeping an emulated promise (`json_schema`, a forced `tool_choice`) on a plain answer, chat's
//! or the Responses API's: the answer is checked; one that breaks the promise gets up to
//! `repair_attempts` repair calls, whose usage counts in the row. A still-broken answer is
//! returned as it is, marked by `x-glm-gateway-validation: failed` and in the row's `emulated`
//! column.

use std::future::Future;

use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::{Map, Value};

use crate::config::EmulationSwitches;
use crate::error::ApiResult;
use crate::openai::Emulation;
use crate::usage::{Tap, TokenUsage, UsageTicket};

/// How the check of a plain answer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Kept,
    Repaired,
    Invalid,
}

/// A plain answer (already translated and tapped) checked against the promise, if there is
/// one. `repair` sends a repair body and returns its translated answer and usage. The tap goes
/// to the ticket in any case, before an error: a failed repair call leaves the tokens spent so
/// far in the row.
pub async fn checked_answer<F, Fut>(
    promise: Option<&Emulation>,
    body: &Map<String, Value>,
    answer: Value,
    switches: EmulationSwitches,
    mut tap: Tap,
    ticket: &UsageTicket,
    repair: F,
) -> ApiResult<(Value, Option<Checked>)>
where
    F: FnMut(Map<String, Value>) -> Fut,
    Fut: Future<Output = ApiResult<(Value, Option<TokenUsage>)>>,
{
    let Some(promise) = promise else {
        ticket.answered(tap);
        return Ok((answer, None));
    };
    let kept = keep_promise(promise, body, answer, switches, &mut tap, repair).await;
    ticket.answered(tap);
    let (answer, checked) = kept?;
    Ok((answer, Some(checked)))
}

/// Returns the answer to send: the first that keeps the promise, else the last one tried.
async fn keep_promise<F, Fut>(
    promise: &Emulation,
    body: &Map<String, Value>,
    mut answer: Value,
    switches: EmulationSwitches,
    tap: &mut Tap,
    mut repair: F,
) -> ApiResult<(Value, Checked)>
where
    F: FnMut(Map<String, Value>) -> Fut,
    Fut: Future<Output = ApiResult<(Value, Option<TokenUsage>)>>,
{
    let mut errors = match promise.validate(&answer) {
        Ok(()) => return Ok((answer, Checked::Kept)),
        Err(errors) => errors,
    };
    for _ in 0..switches.repair_attempts {
        let usage;
        (answer, usage) = repair(promise.repair_body(body, &answer, &errors)).await?;
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
