//! The checks Zhipu's Response API applies to a `POST /responses` body, the input items as it
//! stores them, and the conversation (chat-shaped messages and tools) the model answers.

use serde_json::{json, Map, Value};

use super::errors::RespError;
use super::new_id;
use crate::emulator::catalogue;

/// The only top-level fields this surface accepts.
const ALLOWED_FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "stream",
    "temperature",
    "top_p",
    "max_output_tokens",
    "tools",
    "tool_choice",
    "reasoning",
    "text",
    "prompt_cache_key",
    "previous_response_id",
    "store",
    "metadata",
    "parallel_tool_calls",
    "include",
    "truncation",
    "user",
];
const TOOL_TYPES: &[&str] = &["function", "namespace", "custom", "web_search"];
/// Models served here besides the chat catalogue.
const EXTRA_MODELS: &[&str] = &["glm-5.3", "glm-5.3-flash", "glm-5.3-flashx", "glm-5.2"];
const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh", "max"];

/// A request that passed the checks.
#[derive(Debug)]
pub(crate) struct Checked {
    pub model: String,
    pub stream: bool,
    pub store: bool,
    pub previous: Option<String>,
    pub instructions: Option<String>,
    /// This request's input, as stored items with ids.
    pub input: Vec<Value>,
    /// Function tools in chat's shape, for the model.
    pub tools: Vec<Value>,
    pub json_mode: bool,
}

/// The largest `max_output_tokens` each model takes (reasoning included).
pub(crate) fn max_output_cap(model: &str) -> u64 {
    if model.starts_with("glm-4.6v") || model.starts_with("glm-5v") {
        32_768
    } else if model.starts_with("glm-4v") || model.starts_with("glm-4.1v") || model == "glm-4.5v" {
        16_384
    } else if model.starts_with("glm-4.5-air") || model.starts_with("glm-4.5-flash") {
        98_304
    } else {
        131_072
    }
}

pub(crate) fn check(body: &Value) -> Result<Checked, RespError> {
    let Some(obj) = body.as_object() else {
        return Err(RespError::invalid(
            "body",
            "The body must be a JSON object.",
        ));
    };
    if let Some(name) = obj.keys().find(|k| !ALLOWED_FIELDS.contains(&k.as_str())) {
        return Err(RespError::invalid(
            name,
            format!("Unknown parameter: '{name}'."),
        ));
    }
    let model = match field(obj, "model").map(|m| m.as_str()) {
        None => {
            return Err(RespError::invalid(
                "model",
                "Missing required parameter: 'model'.",
            ))
        }
        Some(None) => return Err(RespError::invalid("model", "model must be a string.")),
        Some(Some(m)) => m,
    };
    if !catalogue::is_known(model) && !EXTRA_MODELS.contains(&model) {
        return Err(RespError::new(
            "model_not_found",
            format!("The model `{model}` does not exist."),
        ));
    }
    check_numbers(obj, model)?;
    check_options(obj, model)?;
    let input = match field(obj, "input") {
        None => {
            return Err(RespError::invalid(
                "input",
                "Missing required parameter: 'input'.",
            ))
        }
        Some(Value::String(text)) => vec![message("user", vec![text_part("input_text", text)])],
        Some(Value::Array(items)) => items.iter().map(normalize_item).collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(RespError::invalid(
                "input",
                "input must be a string or an array.",
            ))
        }
    };
    let bool_of = |key| field(obj, key).and_then(Value::as_bool).unwrap_or(false);
    Ok(Checked {
        model: model.to_owned(),
        stream: bool_of("stream"),
        store: bool_of("store"),
        previous: field(obj, "previous_response_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        instructions: field(obj, "instructions")
            .and_then(Value::as_str)
            .map(str::to_owned),
        input,
        tools: chat_tools(field(obj, "tools"))?,
        json_mode: body.pointer("/text/format/type").and_then(Value::as_str) == Some("json_object"),
    })
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn check_numbers(obj: &Map<String, Value>, model: &str) -> Result<(), RespError> {
    let number = |key: &str| field(obj, key).map(|v| v.as_f64().ok_or_else(|| not_a_number(key)));
    if let Some(t) = number("temperature").transpose()? {
        if !(0.0..=1.0).contains(&t) {
            return Err(RespError::invalid(
                "temperature",
                "temperature must be in [0, 1].",
            ));
        }
    }
    if let Some(p) = number("top_p").transpose()? {
        if !(0.01..=1.0).contains(&p) {
            return Err(RespError::invalid("top_p", "top_p must be in [0.01, 1]."));
        }
    }
    if let Some(max) = field(obj, "max_output_tokens") {
        let cap = max_output_cap(model);
        if !max.as_u64().is_some_and(|m| (1..=cap).contains(&m)) {
            let message = format!("max_output_tokens must be between 1 and {cap} for {model}.");
            return Err(RespError::invalid("max_output_tokens", message));
        }
    }
    Ok(())
}

fn not_a_number(key: &str) -> RespError {
    RespError::invalid(key, format!("{key} must be a number."))
}

fn check_options(obj: &Map<String, Value>, model: &str) -> Result<(), RespError> {
    if let Some(choice) = field(obj, "tool_choice") {
        if !matches!(choice.as_str(), Some("none" | "auto")) {
            return Err(RespError::invalid(
                "tool_choice",
                "tool_choice must be 'none' or 'auto'.",
            ));
        }
    }
    if let Some(effort) = field(obj, "reasoning").and_then(|r| r.get("effort")) {
        let allowed: &[&str] = if model.starts_with("glm-5.3") {
            &["low", "high", "max"]
        } else {
            EFFORTS
        };
        if !effort.as_str().is_some_and(|e| allowed.contains(&e)) {
            let message = format!("reasoning.effort must be one of {allowed:?} for {model}.");
            return Err(RespError::invalid("reasoning.effort", message));
        }
    }
    if let Some(format) = field(obj, "text").and_then(|t| t.get("format")) {
        if !matches!(
            format.get("type").and_then(Value::as_str),
            Some("text" | "json_object")
        ) {
            let message = "text.format.type must be 'text' or 'json_object'.";
            return Err(RespError::invalid("text.format", message));
        }
    }
    Ok(())
}

/// Flat function tools become chat's `{type, function:{…}}`; the other accepted types are
/// checked and otherwise ignored by the emulated model.
fn chat_tools(tools: Option<&Value>) -> Result<Vec<Value>, RespError> {
    let Some(tools) = tools else {
        return Ok(Vec::new());
    };
    let Some(tools) = tools.as_array() else {
        return Err(RespError::invalid("tools", "tools must be an array."));
    };
    let mut out = Vec::new();
    for tool in tools {
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or_default();
        if !TOOL_TYPES.contains(&kind) {
            return Err(RespError::invalid(
                "tools",
                format!("Unsupported tool type: '{kind}'."),
            ));
        }
        if kind != "function" {
            continue;
        }
        let Some(name) = tool
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            return Err(RespError::invalid("tools", "A function tool needs a name."));
        };
        let parameters = tool.get("parameters").cloned().unwrap_or_else(|| json!({}));
        out.push(json!({"type": "function", "function": {"name": name, "parameters": parameters}}));
    }
    Ok(out)
}

/// One input item as stored: typed, with an id. An `input_image` whose `image_url` is an object
/// is dropped without a word, as live Zhipu does.
fn normalize_item(item: &Value) -> Result<Value, RespError> {
    let invalid = |message: &str| RespError::invalid("input", message);
    let Some(obj) = item.as_object() else {
        return Err(invalid("Each input item must be an object."));
    };
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("message");
    let mut out = obj.clone();
    match kind {
        "message" => {
            let role = obj.get("role").and_then(Value::as_str).unwrap_or_default();
            if !matches!(role, "user" | "system" | "assistant" | "developer") {
                return Err(invalid(
                    "A message needs a role: user, system, assistant or developer.",
                ));
            }
            let parts = content_parts(role, obj.get("content"))?;
            out.insert("content".into(), Value::Array(parts));
            out.insert("type".into(), Value::from("message"));
            out.entry("status")
                .or_insert_with(|| Value::from("completed"));
        }
        "function_call" | "function_call_output" => {
            if !obj.get("call_id").is_some_and(Value::is_string) {
                return Err(invalid("A function call item needs a call_id."));
            }
        }
        "reasoning" => {}
        other => return Err(invalid(&format!("Unsupported input item type: '{other}'."))),
    }
    if !out.get("id").is_some_and(Value::is_string) {
        let prefix = if kind == "message" { "msg" } else { "item" };
        out.insert("id".into(), Value::from(new_id(prefix)));
    }
    Ok(Value::Object(out))
}

fn content_parts(role: &str, content: Option<&Value>) -> Result<Vec<Value>, RespError> {
    let text_kind = if role == "assistant" {
        "output_text"
    } else {
        "input_text"
    };
    match content {
        Some(Value::String(text)) => Ok(vec![text_part(text_kind, text)]),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .map(check_part)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect()),
        _ => Err(RespError::invalid("input", "A message needs content.")),
    }
}

fn check_part(part: &Value) -> Result<Option<Value>, RespError> {
    match part.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "input_file") => Ok(Some(part.clone())),
        Some("input_image") => Ok(part
            .get("image_url")
            .is_some_and(Value::is_string)
            .then(|| part.clone())),
        other => Err(RespError::invalid(
            "input",
            format!(
                "Unsupported content part type: '{}'.",
                other.unwrap_or_default()
            ),
        )),
    }
}

pub(crate) fn message(role: &str, content: Vec<Value>) -> Value {
    json!({"id": new_id("msg"), "type": "message", "role": role, "status": "completed", "content": content})
}

fn text_part(kind: &str, text: &str) -> Value {
    json!({"type": kind, "text": text})
}

/// The items as chat messages, for the emulated model: instructions first as a system message,
/// developer as system, a function call's output as a `tool` message.
pub(crate) fn chat_messages(instructions: Option<&str>, items: &[Value]) -> Vec<Value> {
    let mut messages: Vec<Value> = instructions
        .map(|text| json!({"role": "system", "content": text}))
        .into_iter()
        .collect();
    for item in items {
        let message = match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                let role = match item["role"].as_str() {
                    Some("developer") => "system",
                    Some(role) => role,
                    None => continue,
                };
                json!({"role": role, "content": item_text(item)})
            }
            Some("function_call_output") => {
                let output = match &item["output"] {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                json!({"role": "tool", "content": output})
            }
            Some("function_call") => json!({"role": "assistant", "content": ""}),
            _ => continue,
        };
        messages.push(message);
    }
    messages
}

/// The text parts of a message item, joined by spaces.
pub(crate) fn item_text(item: &Value) -> String {
    item["content"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}
