//! Zhipu's response objects made whole for strict OpenAI clients: the fields it leaves out
//! (`store`, `completed_at`, `reasoning`, `truncation`, `tools`, `text`, …) filled from what the
//! client asked, and output items given the `id`, `status` and `annotations` they must have.

use serde_json::{json, Map, Value};

/// The client's settings as a response echoes them, with OpenAI's defaults.
#[derive(Debug, Clone, Default)]
pub struct Echo(Map<String, Value>);

impl Echo {
    /// From the client's request (before translation) and the effective `store`.
    pub fn of(request: &Map<String, Value>, store: bool) -> Self {
        let given = |key: &str, default: Value| {
            request
                .get(key)
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or(default)
        };
        let mut echo = Map::new();
        let defaults = [
            ("tools", json!([])),
            ("tool_choice", json!("auto")),
            ("text", json!({"format": {"type": "text"}})),
            ("temperature", json!(1.0)),
            ("top_p", json!(1.0)),
            ("metadata", json!({})),
            ("parallel_tool_calls", json!(true)),
            ("reasoning", json!({"effort": null, "summary": null})),
            ("truncation", json!("disabled")),
            ("user", Value::Null),
            ("instructions", Value::Null),
            ("max_output_tokens", Value::Null),
            ("previous_response_id", Value::Null),
            ("prompt_cache_key", Value::Null),
            ("safety_identifier", Value::Null),
            ("service_tier", json!("default")),
            ("top_logprobs", json!(0)),
            ("max_tool_calls", Value::Null),
        ];
        for (key, default) in defaults {
            echo.insert(key.to_owned(), given(key, default));
        }
        echo.insert("store".into(), Value::Bool(store));
        echo.insert("background".into(), Value::Bool(false));
        Self(echo)
    }

    /// For a stored response read back later: the request is not known, only that it was
    /// stored.
    pub fn stored() -> Self {
        Self::of(&Map::new(), true)
    }
}

/// Fields that may stay `null` in a complete response.
const NULLABLE: &[&str] = &[
    "user",
    "instructions",
    "max_output_tokens",
    "previous_response_id",
    "prompt_cache_key",
    "safety_identifier",
    "max_tool_calls",
];

/// Fills what Zhipu left out; what it did send is kept.
pub fn complete_response(response: &mut Value, echo: &Echo) {
    let Some(object) = response.as_object_mut() else {
        return;
    };
    object.entry("object").or_insert_with(|| json!("response"));
    for key in ["error", "incomplete_details"] {
        object.entry(key).or_insert(Value::Null);
    }
    for (key, value) in &echo.0 {
        let missing = match object.get(key) {
            None => true,
            Some(Value::Null) => !NULLABLE.contains(&key.as_str()),
            Some(_) => false,
        };
        if missing {
            object.insert(key.clone(), value.clone());
        }
    }
    if object.get("completed_at").is_none_or(Value::is_null) {
        let completed = object.get("status").and_then(Value::as_str) == Some("completed");
        let at = completed.then(|| chrono::Utc::now().timestamp());
        object.insert("completed_at".into(), json!(at));
    }
    if !object.get("output").is_some_and(Value::is_array) {
        object.insert("output".into(), json!([]));
    }
    if let Some(Value::Array(items)) = object.get_mut("output") {
        items.iter_mut().for_each(complete_item);
    }
}

/// An output item: an `id` and `status`; message parts with `annotations` and `logprobs`;
/// reasoning with `summary`.
pub fn complete_item(item: &mut Value) {
    let Some(object) = item.as_object_mut() else {
        return;
    };
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !object.get("id").is_some_and(Value::is_string) {
        let prefix = match kind.as_str() {
            "message" => "msg",
            "function_call" => "fc",
            "reasoning" => "rs",
            _ => "item",
        };
        let id = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        object.insert("id".into(), Value::from(id));
    }
    if kind != "reasoning" {
        object.entry("status").or_insert_with(|| json!("completed"));
    }
    match kind.as_str() {
        "message" => {
            object.entry("role").or_insert_with(|| json!("assistant"));
            if let Some(Value::Array(parts)) = object.get_mut("content") {
                parts.iter_mut().for_each(complete_part);
            }
        }
        "reasoning" => {
            object.entry("summary").or_insert_with(|| json!([]));
        }
        _ => {}
    }
}

/// An `output_text` part: `annotations` and `logprobs` lists.
pub fn complete_part(part: &mut Value) {
    let Some(object) = part.as_object_mut() else {
        return;
    };
    if object.get("type").and_then(Value::as_str) == Some("output_text") {
        object.entry("annotations").or_insert_with(|| json!([]));
        object.entry("logprobs").or_insert_with(|| json!([]));
    }
}
