//! Chat messages: OpenAI roles and content parts fitted into GLM's. Each role gets only the
//! fields Zhipu documents for it (an allowlist: whatever else an SDK echoes back, such as
//! `refusal`, `annotations`, `audio`, `parsed` or `name`, is dropped, never refused). Text-only
//! part arrays become strings; vision parts stay parts, with data URLs reduced to bare base64.

use serde_json::{Map, Value};

use super::request::ChatMessage;
use crate::error::{ApiError, ApiResult};

pub(crate) fn to_glm(messages: Vec<ChatMessage>) -> ApiResult<Vec<Value>> {
    if messages.is_empty() {
        return Err(ApiError::invalid_request("messages must not be empty").param("messages"));
    }
    messages
        .into_iter()
        .enumerate()
        .map(|(i, message)| message_to_glm(i, message))
        .collect()
}

/// Builds each message from scratch: system and user get `role` and `content`; assistant also
/// `tool_calls`; tool also `tool_call_id`. The `extra` keys are never read.
fn message_to_glm(i: usize, message: ChatMessage) -> ApiResult<Value> {
    let ChatMessage {
        role,
        content,
        tool_calls,
        tool_call_id,
        extra: _,
    } = message;
    let role = match role.as_str() {
        "system" | "user" | "assistant" | "tool" => role,
        "developer" => "system".to_owned(),
        _ => {
            return Err(ApiError::invalid_request(format!(
                "messages[{i}].role must be system, developer, user, assistant or tool"
            ))
            .param(format!("messages[{i}].role")))
        }
    };
    let mut glm = Map::new();
    if let Some(content) = content.map(|c| content_to_glm(i, c)).transpose()?.flatten() {
        glm.insert("content".to_owned(), content);
    }
    match (role.as_str(), tool_calls, tool_call_id) {
        ("assistant", Some(calls), _) if !calls.is_empty() => {
            let calls = calls.into_iter().map(clean_tool_call).collect();
            glm.insert("tool_calls".to_owned(), Value::Array(calls));
        }
        ("tool", _, Some(id)) => {
            glm.insert("tool_call_id".to_owned(), Value::String(id));
        }
        _ => {}
    }
    // GLM refuses an assistant turn with neither content nor tool calls; the SDKs write one
    // (content null, a refusal instead) when echoing a refused answer back.
    if role == "assistant" && !glm.contains_key("content") && !glm.contains_key("tool_calls") {
        glm.insert("content".to_owned(), Value::from(""));
    }
    glm.insert("role".to_owned(), Value::String(role));
    Ok(Value::Object(glm))
}

/// A tool call as GLM documents it: `id`, `type` and `function` with only `name` and
/// `arguments` (a string: an object some clients send is serialised).
fn clean_tool_call(call: Value) -> Value {
    let Value::Object(mut call) = call else {
        return call;
    };
    let mut glm = Map::new();
    if let Some(id) = call.remove("id") {
        glm.insert("id".to_owned(), id);
    }
    let kind = call
        .remove("type")
        .unwrap_or_else(|| Value::from("function"));
    glm.insert("type".to_owned(), kind);
    if let Some(Value::Object(mut function)) = call.remove("function") {
        let mut clean = Map::new();
        if let Some(name) = function.remove("name") {
            clean.insert("name".to_owned(), name);
        }
        let arguments = match function.remove("arguments") {
            Some(Value::String(text)) => Value::String(text),
            None | Some(Value::Null) => Value::from("{}"),
            Some(other) => Value::String(other.to_string()),
        };
        clean.insert("arguments".to_owned(), arguments);
        glm.insert("function".to_owned(), Value::Object(clean));
    }
    Value::Object(glm)
}

/// `None` for null content (an assistant turn that only called tools).
fn content_to_glm(i: usize, content: Value) -> ApiResult<Option<Value>> {
    match content {
        Value::Null => Ok(None),
        Value::String(_) => Ok(Some(content)),
        Value::Array(parts) => parts_to_glm(i, parts).map(Some),
        _ => Err(ApiError::invalid_request(format!(
            "messages[{i}].content must be a string or an array of content parts"
        ))
        .param(format!("messages[{i}].content"))),
    }
}

/// Text models take a string, so all-text arrays are joined with "\n"; an array with any
/// image, video or file part is kept as parts.
fn parts_to_glm(i: usize, parts: Vec<Value>) -> ApiResult<Value> {
    let mut has_media = false;
    for (j, part) in parts.iter().enumerate() {
        match part.get("type").and_then(Value::as_str) {
            Some("text") if part.get("text").is_some_and(Value::is_string) => {}
            Some("text") => {
                return Err(part_error(
                    i,
                    j,
                    "text",
                    "a text part needs a string `text`",
                ))
            }
            Some("image_url" | "video_url" | "file_url") => has_media = true,
            Some(kind) => {
                let message = format!("content parts of type `{kind}` are not supported by GLM");
                return Err(part_error(i, j, "type", &message));
            }
            None => return Err(part_error(i, j, "type", "a content part needs a `type`")),
        }
    }
    if !has_media {
        return Ok(Value::String(join_text(parts)));
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(j, part)| media_part(i, j, part))
        .collect::<ApiResult<Vec<_>>>()
        .map(Value::Array)
}

/// Joins validated text parts; a single part is moved, not copied.
fn join_text(parts: Vec<Value>) -> String {
    let mut joined: Option<String> = None;
    for part in parts {
        let Value::Object(mut part) = part else {
            continue;
        };
        let Some(Value::String(text)) = part.remove("text") else {
            continue;
        };
        match joined.as_mut() {
            None => joined = Some(text),
            Some(joined) => {
                joined.push('\n');
                joined.push_str(&text);
            }
        }
    }
    joined.unwrap_or_default()
}

/// One part of a vision message. Text keeps only `type` and `text`; `image_url` keeps only
/// `url` (GLM's schema forbids other keys such as `detail`); video and file parts pass as is.
fn media_part(i: usize, j: usize, part: Value) -> ApiResult<Value> {
    let Value::Object(mut part) = part else {
        return Ok(part);
    };
    match part.get("type").and_then(Value::as_str) {
        Some("text") => {
            part.retain(|key, _| key == "type" || key == "text");
            Ok(Value::Object(part))
        }
        Some("image_url") => {
            let url = match part.remove("image_url") {
                Some(Value::String(url)) => url,
                Some(Value::Object(mut image)) => match image.remove("url") {
                    Some(Value::String(url)) => url,
                    _ => return Err(part_error(i, j, "image_url", "image_url.url is required")),
                },
                _ => return Err(part_error(i, j, "image_url", "image_url.url is required")),
            };
            let mut image = Map::new();
            image.insert("url".to_owned(), Value::String(strip_data_url(url)));
            let mut glm = Map::new();
            glm.insert("type".to_owned(), Value::from("image_url"));
            glm.insert("image_url".to_owned(), Value::Object(image));
            Ok(Value::Object(glm))
        }
        _ => Ok(Value::Object(part)),
    }
}

/// GLM wants bare base64 where OpenAI sends `data:<mime>;base64,<data>`. The marker is looked
/// for only near the start, and removed in place: images can be megabytes.
fn strip_data_url(mut url: String) -> String {
    const MARKER: &[u8] = b";base64,";
    if !url.starts_with("data:") {
        return url;
    }
    let head = &url.as_bytes()[..url.len().min(256)];
    if let Some(at) = head.windows(MARKER.len()).position(|w| w == MARKER) {
        url.replace_range(..at + MARKER.len(), "");
    }
    url
}

fn part_error(i: usize, j: usize, field: &str, message: &str) -> ApiError {
    ApiError::invalid_request(format!("messages[{i}].content[{j}]: {message}"))
        .param(format!("messages[{i}].content[{j}].{field}"))
}

#[cfg(test)]
mod tests;
