//! The top-level checks real Zhipu applies to a chat request: unknown fields (1210), unknown
//! model (1211), missing (1213) and out-of-range (1214) parameters.

use serde_json::{Map, Value};

use super::catalogue;
use super::errors::ZhipuError;
use super::messages;

/// The only top-level fields Zhipu's v4 chat schema accepts.
const ALLOWED_FIELDS: &[&str] = &[
    "model",
    "messages",
    "request_id",
    "do_sample",
    "stream",
    "thinking",
    "temperature",
    "top_p",
    "max_tokens",
    "tool_stream",
    "tools",
    "tool_choice",
    "stop",
    "response_format",
    "user_id",
    "meta",
    "sensitive_word_check",
    "watermark_enabled",
    "extra",
];

/// The parts of a valid request the emulator acts on.
#[derive(Debug)]
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub stream: bool,
    pub request_id: Option<&'a str>,
    pub messages: &'a [Value],
    pub tools: &'a [Value],
}

/// Validates a parsed request body. Explicit `null`s count as absent, as Zhipu's binder does.
pub(crate) fn chat_request(body: &Value) -> Result<ChatRequest<'_>, ZhipuError> {
    let Some(obj) = body.as_object() else {
        return Err(ZhipuError::new(1210, "请求体必须是JSON对象"));
    };
    if let Some(name) = obj.keys().find(|k| !ALLOWED_FIELDS.contains(&k.as_str())) {
        return Err(ZhipuError::unknown(name));
    }
    let model = check_model(obj)?;
    check_sampling(obj, model)?;
    check_limits(obj, model)?;
    check_flags(obj)?;
    check_formats(obj)?;
    let messages = messages::check_messages(field(obj, "messages"))?;
    let tools = messages::check_tools(field(obj, "tools"))?;
    Ok(ChatRequest {
        model,
        stream: field(obj, "stream")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        request_id: field(obj, "request_id").and_then(Value::as_str),
        messages,
        tools,
    })
}

/// A field's value, treating an explicit `null` as absent.
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn check_model(obj: &Map<String, Value>) -> Result<&str, ZhipuError> {
    let model = field(obj, "model").ok_or_else(|| ZhipuError::missing("model"))?;
    let model = model
        .as_str()
        .ok_or_else(|| ZhipuError::invalid("model", "must be a string"))?;
    if !catalogue::is_known(model) {
        return Err(ZhipuError::from_code(1211));
    }
    Ok(model)
}

fn check_sampling(obj: &Map<String, Value>, model: &str) -> Result<(), ZhipuError> {
    if let Some(value) = field(obj, "temperature") {
        let t = value
            .as_f64()
            .ok_or_else(|| ZhipuError::invalid("temperature", "must be a number"))?;
        let in_range = if catalogue::is_legacy(model) {
            t > 0.0 && t < 1.0
        } else {
            (0.0..=1.0).contains(&t)
        };
        if !in_range {
            let range = if catalogue::is_legacy(model) {
                "(0,1)"
            } else {
                "[0,1]"
            };
            let detail = format!("temperature must be in {range} for {model}");
            return Err(ZhipuError::invalid("temperature", &detail));
        }
        let scaled = t * 100.0;
        if (scaled - scaled.round()).abs() > 1e-6 {
            return Err(ZhipuError::invalid("temperature", "at most two decimals"));
        }
    }
    if let Some(value) = field(obj, "top_p") {
        let p = value.as_f64().unwrap_or(f64::NAN);
        if !(p > 0.0 && p < 1.0) {
            return Err(ZhipuError::invalid("top_p", "top_p must be in (0,1)"));
        }
    }
    Ok(())
}

fn check_limits(obj: &Map<String, Value>, model: &str) -> Result<(), ZhipuError> {
    if let Some(value) = field(obj, "max_tokens") {
        let cap = catalogue::max_tokens_cap(model);
        match value.as_u64() {
            Some(n) if (1..=cap).contains(&n) => {}
            _ => {
                let detail = format!("max_tokens must be an integer in [1,{cap}] for {model}");
                return Err(ZhipuError::invalid("max_tokens", &detail));
            }
        }
    }
    if let Some(value) = field(obj, "stop") {
        let ok = value
            .as_array()
            .is_some_and(|stops| stops.len() <= 1 && stops.iter().all(Value::is_string));
        if !ok {
            let detail = "stop must be an array of at most 1 string";
            return Err(ZhipuError::invalid("stop", detail));
        }
    }
    if let Some(value) = field(obj, "user_id") {
        let len = value.as_str().map(|s| s.chars().count());
        if !len.is_some_and(|n| (6..=128).contains(&n)) {
            let detail = "user_id must be a string of 6 to 128 characters";
            return Err(ZhipuError::invalid("user_id", detail));
        }
    }
    Ok(())
}

fn check_flags(obj: &Map<String, Value>) -> Result<(), ZhipuError> {
    for name in ["do_sample", "stream", "tool_stream", "watermark_enabled"] {
        if field(obj, name).is_some_and(|v| !v.is_boolean()) {
            return Err(ZhipuError::invalid(name, "must be a boolean"));
        }
    }
    for name in ["meta", "sensitive_word_check", "extra"] {
        if field(obj, name).is_some_and(|v| !v.is_object()) {
            return Err(ZhipuError::invalid(name, "must be an object"));
        }
    }
    if let Some(id) = field(obj, "request_id") {
        if id.as_str().is_none_or(str::is_empty) {
            return Err(ZhipuError::invalid(
                "request_id",
                "must be a non-empty string",
            ));
        }
    }
    Ok(())
}

fn check_formats(obj: &Map<String, Value>) -> Result<(), ZhipuError> {
    if let Some(value) = field(obj, "tool_choice") {
        if value.as_str() != Some("auto") {
            return Err(ZhipuError::invalid(
                "tool_choice",
                "only \"auto\" is supported",
            ));
        }
    }
    if let Some(value) = field(obj, "response_format") {
        let kind = value.get("type").and_then(Value::as_str);
        if !matches!(kind, Some("text" | "json_object")) {
            let detail = "response_format.type must be text or json_object";
            return Err(ZhipuError::invalid("response_format", detail));
        }
    }
    if let Some(value) = field(obj, "thinking") {
        let kind = value.get("type").and_then(Value::as_str);
        if !matches!(kind, Some("enabled" | "disabled")) {
            let detail = "thinking.type must be enabled or disabled";
            return Err(ZhipuError::invalid("thinking", detail));
        }
    }
    Ok(())
}
