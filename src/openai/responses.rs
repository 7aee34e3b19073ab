//! OpenAI's Responses request fitted to Zhipu's Response API: `store` defaulted, sampling and
//! length clamped, `reasoning.effort` mapped per model, image URLs flattened, built-in tools
//! Zhipu lacks refused, and `json_schema` / a forced `tool_choice` emulated as for chat.
//! Pure; the route does the I/O.

use serde_json::{Map, Value};

use super::emulate::{self, Emulation, Surface};
use crate::catalogue::Catalogue;
use crate::config::{EmulationConfig, EmulationSwitches};
use crate::error::{ApiError, ApiResult};
use crate::json_path::At;

mod answer;
mod stream;
mod tools;

pub use answer::{complete_response, Echo};
pub use stream::ResponsesStream;

/// OpenAI fields Zhipu does not take and that change nothing a client relies on.
const DROPPED: &[&str] = &[
    "service_tier",
    "top_logprobs",
    "safety_identifier",
    "max_tool_calls",
    "stream_options",
    "prompt_cache_retention",
];

/// The body for Zhipu and what the route needs to know about the answer.
#[derive(Debug)]
pub struct ResponsesPlan {
    pub body: Map<String, Value>,
    pub stream: bool,
    pub store: bool,
    pub previous_response_id: Option<String>,
    /// A `json_schema` or forced `tool_choice` kept by rewriting the body, as for chat (see
    /// `emulate`).
    pub emulation: Option<Emulation>,
    /// The client's settings, to fill the fields Zhipu leaves out of its answer.
    pub echo: Echo,
}

/// `upstream_model` is the resolved GLM model; `store_default` applies when `store` is absent.
pub fn to_zhipu(
    body: Value,
    upstream_model: &str,
    store_default: bool,
) -> ApiResult<ResponsesPlan> {
    let Value::Object(mut body) = body else {
        return Err(ApiError::invalid_request(
            "The request body must be a JSON object.",
        ));
    };
    reject_unsupported(&body)?;
    for key in DROPPED {
        body.remove(*key);
    }
    body.remove("background");
    let store = match body.get("store") {
        None | Some(Value::Null) => store_default,
        Some(Value::Bool(store)) => *store,
        Some(_) => return Err(bad_type("store", "a boolean")),
    };
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(_) => return Err(bad_type("stream", "a boolean")),
    };
    let previous_response_id = match body.get("previous_response_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Err(bad_type("previous_response_id", "a string")),
    };
    if body.get("input").is_none_or(Value::is_null) {
        return Err(
            ApiError::invalid_request("Missing required parameter: 'input'.").param("input"),
        );
    }
    let echo = Echo::of(&body, store);
    body.insert("model".into(), Value::from(upstream_model));
    body.insert("store".into(), Value::Bool(store));
    apply_sampling(&mut body, upstream_model)?;
    apply_reasoning(&mut body, upstream_model);
    if let Some(input) = body.get_mut("input") {
        flatten_image_urls(input);
    }
    let tool = tools::apply_tools(&mut body)?;
    let schema = tools::apply_text_format(&mut body)?;
    let emulation = emulate::plan(Surface::Responses, &mut body, tool, schema)?;
    Ok(ResponsesPlan {
        body,
        stream,
        store,
        previous_response_id,
        emulation,
        echo,
    })
}

impl ResponsesPlan {
    /// Applies the `[emulation]` switches (see `emulate::settle`).
    pub fn settle_emulation(&mut self, config: &EmulationConfig) -> EmulationSwitches {
        emulate::settle(&mut self.emulation, &mut self.body, config)
    }
}

fn reject_unsupported(body: &Map<String, Value>) -> ApiResult<()> {
    let refuse = |param: &str, message: &str| Err(ApiError::invalid_request(message).param(param));
    if body.get("background") == Some(&Value::Bool(true)) {
        return refuse("background", "Zhipu's Response API has no background mode.");
    }
    if body.get("conversation").is_some_and(|c| !c.is_null()) {
        return refuse(
            "conversation",
            "Zhipu's Response API has no conversations; chain turns with previous_response_id.",
        );
    }
    if body.get("prompt").is_some_and(|p| !p.is_null()) {
        return refuse(
            "prompt",
            "Zhipu's Response API has no stored prompt templates.",
        );
    }
    Ok(())
}

fn bad_type(param: &str, expected: &str) -> ApiError {
    ApiError::invalid_request(format!("{param} must be {expected}.")).param(param)
}

/// The largest `max_output_tokens` Zhipu accepts for the model (reasoning included); more is
/// a 400 there, so the gateway clamps.
pub fn max_output_cap(model: &str) -> i64 {
    Catalogue::builtin().model(model).responses_max_output
}

/// OpenAI allows temperature 0–2 and top_p 0–1; Zhipu here takes [0,1] and [0.01,1], two
/// decimals.
fn apply_sampling(body: &mut Map<String, Value>, model: &str) -> ApiResult<()> {
    let round2 = |v: f64| (v * 100.0).round() / 100.0;
    for (param, max, low, high) in [("temperature", 2.0, 0.0, 1.0), ("top_p", 1.0, 0.01, 1.0)] {
        match body.get(param) {
            None | Some(Value::Null) => {
                body.remove(param);
            }
            Some(value) => {
                let Some(v) = value.as_f64().filter(|v| (0.0..=max).contains(v)) else {
                    return Err(bad_type(param, &format!("a number between 0 and {max}")));
                };
                body.insert(param.into(), Value::from(round2(v).clamp(low, high)));
            }
        }
    }
    match body.get("max_output_tokens") {
        None | Some(Value::Null) => {
            body.remove("max_output_tokens");
        }
        Some(value) => {
            let Some(max) = value.as_i64().filter(|m| *m >= 1) else {
                return Err(bad_type("max_output_tokens", "an integer of at least 1"));
            };
            body.insert(
                "max_output_tokens".into(),
                Value::from(max.min(max_output_cap(model))),
            );
        }
    }
    Ok(())
}

/// OpenAI's efforts, least first.
const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh", "max"];

/// A model with a list of efforts in the catalogue (the glm-5.3 family: `low|high|max`) gets
/// the least listed effort at or above the one asked (`medium` becomes `high`), or its
/// highest; an effort OpenAI does not know is dropped. Other models get the effort as sent.
/// Summaries do not exist on Zhipu, so their settings are dropped.
fn apply_reasoning(body: &mut Map<String, Value>, model: &str) {
    let Some(Value::Object(reasoning)) = body.get_mut("reasoning") else {
        body.remove("reasoning");
        return;
    };
    reasoning.remove("summary");
    reasoning.remove("generate_summary");
    let Some(accepted) = Catalogue::builtin().model(model).reasoning_efforts.clone() else {
        return;
    };
    let rank = |effort: &str| EFFORTS.iter().position(|e| *e == effort);
    let asked = reasoning
        .get("effort")
        .and_then(Value::as_str)
        .and_then(rank);
    let mapped = asked.and_then(|asked| {
        let mut ranked: Vec<(usize, &String)> = accepted
            .iter()
            .filter_map(|e| Some((rank(e)?, e)))
            .collect();
        ranked.sort();
        let at_or_above = ranked.iter().find(|(r, _)| *r >= asked);
        at_or_above.or(ranked.last()).map(|(_, e)| (*e).clone())
    });
    match mapped {
        Some(effort) => reasoning.insert("effort".into(), Value::from(effort)),
        None => reasoning.remove("effort"),
    };
}

/// Zhipu accepts `input_image.image_url` as an object `{url}` and silently drops the image;
/// only a string works, so objects are flattened to their URL.
fn flatten_image_urls(input: &mut Value) {
    let Some(items) = input.as_array_mut() else {
        return;
    };
    let parts = items
        .iter_mut()
        .filter_map(|item| item.get_mut("content").and_then(Value::as_array_mut))
        .flatten();
    for part in parts {
        if part.get("type").and_then(Value::as_str) != Some("input_image") {
            continue;
        }
        if let Some(url) = part.at("/image_url/url").cloned() {
            part["image_url"] = url;
        }
    }
}

#[cfg(test)]
mod tests;
