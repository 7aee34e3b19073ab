//! Sampling, length, stop and user parameters: OpenAI's ranges checked, then fitted into the
//! ranges and per-model caps GLM accepts.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::request::Stop;
use crate::catalogue::Catalogue;
use crate::error::{ApiError, ApiResult};

/// What a GLM model accepts, from the model catalogue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ModelLimits {
    pub temperature_max: f64,
    pub max_tokens: i64,
}

impl ModelLimits {
    pub fn of(model: &str) -> Self {
        let info = Catalogue::builtin().model(model);
        Self {
            temperature_max: info.temperature_max,
            max_tokens: info.max_output,
        }
    }
}

/// GLM takes "two decimals".
fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// OpenAI allows 0–2. GLM rejects 0 (greedy decoding is `do_sample:false` there) and tops out
/// at 1, or below 1 on older models.
pub(crate) fn apply_temperature(
    body: &mut Map<String, Value>,
    temperature: Option<f64>,
    limits: &ModelLimits,
) -> ApiResult<()> {
    let Some(temperature) = temperature else {
        return Ok(());
    };
    if !(0.0..=2.0).contains(&temperature) {
        return Err(out_of_range("temperature", "between 0 and 2"));
    }
    let temperature = round2(temperature);
    if temperature <= 0.0 {
        body.entry("do_sample").or_insert(Value::Bool(false));
        return Ok(());
    }
    let temperature = temperature.clamp(0.01, limits.temperature_max);
    body.insert("temperature".to_owned(), Value::from(temperature));
    Ok(())
}

/// OpenAI allows 0–1; GLM rejects both ends ("top_p参数非法" for 1).
pub(crate) fn apply_top_p(body: &mut Map<String, Value>, top_p: Option<f64>) -> ApiResult<()> {
    let Some(top_p) = top_p else {
        return Ok(());
    };
    if !(0.0..=1.0).contains(&top_p) {
        return Err(out_of_range("top_p", "between 0 and 1"));
    }
    let top_p = round2(top_p).clamp(0.01, 0.99);
    body.insert("top_p".to_owned(), Value::from(top_p));
    Ok(())
}

/// `max_completion_tokens` is OpenAI's newer name for `max_tokens`; with both, the smaller
/// wins. The result is clamped to the model's cap, which GLM would otherwise reject.
pub(crate) fn apply_max_tokens(
    body: &mut Map<String, Value>,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    limits: &ModelLimits,
) -> ApiResult<()> {
    for (param, value) in [
        ("max_tokens", max_tokens),
        ("max_completion_tokens", max_completion_tokens),
    ] {
        if value.is_some_and(|v| v < 1) {
            return Err(out_of_range(param, "at least 1"));
        }
    }
    let chosen = match (max_tokens, max_completion_tokens) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Some(chosen) = chosen {
        let value = Value::from(chosen.min(limits.max_tokens));
        body.insert("max_tokens".to_owned(), value);
    }
    Ok(())
}

/// GLM accepts a single stop sequence. More than one is refused rather than cut to the first,
/// since generation would silently run past the others.
pub(crate) fn apply_stop(body: &mut Map<String, Value>, stop: Option<Stop>) -> ApiResult<()> {
    let stops = match stop {
        None => return Ok(()),
        Some(Stop::One(stop)) => vec![stop],
        Some(Stop::Many(stops)) => stops,
    };
    match stops.len() {
        0 => Ok(()),
        1 => {
            body.insert("stop".to_owned(), Value::from(stops));
            Ok(())
        }
        n => Err(ApiError::invalid_request(format!(
            "Zhipu accepts only one stop sequence; got {n}"
        ))
        .param("stop")),
    }
}

/// `user` (or `safety_identifier` when `user` is absent or empty) becomes GLM's `user_id`,
/// which must be 6–128 characters. A `user_id` the client set itself wins.
pub(crate) fn apply_user(
    body: &mut Map<String, Value>,
    user: Option<String>,
    safety_identifier: Option<String>,
) {
    if body.contains_key("user_id") {
        return;
    }
    let user = user
        .filter(|u| !u.is_empty())
        .or(safety_identifier.filter(|u| !u.is_empty()));
    if let Some(user) = user {
        body.insert("user_id".to_owned(), Value::String(user_id_for(user)));
    }
}

/// Short ids get a `user-` prefix (padded with `-` to 6 characters); ids over 128 characters
/// become their SHA-256 in hex, which stays stable and distinct per user.
pub(crate) fn user_id_for(user: String) -> String {
    let chars = user.chars().count();
    if chars > 128 {
        return hex::encode(Sha256::digest(user.as_bytes()));
    }
    if chars >= 6 {
        return user;
    }
    let mut id = format!("user-{user}");
    while id.chars().count() < 6 {
        id.push('-');
    }
    id
}

fn out_of_range(param: &str, range: &str) -> ApiError {
    ApiError::invalid_request(format!("{param} must be {range}")).param(param)
}

#[cfg(test)]
mod tests;
