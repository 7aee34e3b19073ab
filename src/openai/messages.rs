//! Chat messages: OpenAI roles and content parts fitted into GLM's. Text-only part arrays become
//! strings; vision parts stay parts, with data URLs reduced to the bare base64 GLM expects.

use serde_json::{Map, Value};

use super::chat::ChatMessage;
use crate::error::{ApiError, ApiResult};

/// OpenAI-only message keys GLM does not know.
const DROPPED: &[&str] = &["name", "refusal", "audio", "annotations", "function_call"];

/// Keys of an assistant tool call GLM understands.
const TOOL_CALL_KEYS: &[&str] = &["id", "type", "function", "index"];

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

fn message_to_glm(i: usize, message: ChatMessage) -> ApiResult<Value> {
    let ChatMessage {
        role,
        content,
        tool_calls,
        tool_call_id,
        extra: mut glm,
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
    for key in DROPPED {
        glm.remove(*key);
    }
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
    glm.insert("role".to_owned(), Value::String(role));
    Ok(Value::Object(glm))
}

fn clean_tool_call(mut call: Value) -> Value {
    if let Some(call) = call.as_object_mut() {
        call.retain(|key, _| TOOL_CALL_KEYS.contains(&key.as_str()));
        call.entry("type")
            .or_insert_with(|| Value::from("function"));
    }
    call
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
