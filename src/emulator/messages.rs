//! Checks on `messages` and `tools`: roles, content parts, image URLs and function schemas,
//! each failure a 1213/1214 naming the parameter, as Zhipu's schema validation answers.

use serde_json::{Map, Value};

use super::errors::ZhipuError;

const MESSAGE_KEYS: &[&str] = &["role", "content", "tool_calls", "tool_call_id"];
const FUNCTION_KEYS: &[&str] = &["name", "description", "parameters"];
/// Zhipu's documented limit on the number of tools in one request.
const MAX_TOOLS: usize = 128;

/// Validates `messages` and returns them.
pub(crate) fn check_messages(value: Option<&Value>) -> Result<&[Value], ZhipuError> {
    let value = value.ok_or_else(|| ZhipuError::missing("messages"))?;
    let messages = match value.as_array() {
        Some(list) if !list.is_empty() => list.as_slice(),
        _ => return Err(ZhipuError::invalid("messages", "must be a non-empty array")),
    };
    for message in messages {
        check_message(message)?;
    }
    let has_turn = messages
        .iter()
        .any(|m| matches!(role_of(m), Some("user" | "tool")));
    if !has_turn {
        let detail = "must not contain only system or assistant messages";
        return Err(ZhipuError::invalid("messages", detail));
    }
    Ok(messages)
}

/// A message's role, if it has a string one.
pub(crate) fn role_of(message: &Value) -> Option<&str> {
    message.get("role").and_then(Value::as_str)
}

fn check_message(message: &Value) -> Result<(), ZhipuError> {
    let invalid = |detail: &str| ZhipuError::invalid("messages", detail);
    let obj = message
        .as_object()
        .ok_or_else(|| invalid("each message must be an object"))?;
    if let Some(key) = obj.keys().find(|k| !MESSAGE_KEYS.contains(&k.as_str())) {
        return Err(invalid(&format!("unsupported message field: {key}")));
    }
    let content = obj.get("content").filter(|c| !c.is_null());
    match role_of(message) {
        Some("user") => check_user_content(content)?,
        Some("system" | "tool") => {
            if !content.is_some_and(Value::is_string) {
                return Err(invalid("system and tool content must be a string"));
            }
        }
        Some("assistant") => {
            if content.is_some_and(|c| !c.is_string()) {
                return Err(invalid("assistant content must be a string"));
            }
            if content.is_none() && obj.get("tool_calls").is_none_or(Value::is_null) {
                return Err(invalid("assistant message needs content or tool_calls"));
            }
        }
        _ => return Err(invalid("role must be one of system, user, assistant, tool")),
    }
    check_tool_fields(obj)
}

fn check_tool_fields(obj: &Map<String, Value>) -> Result<(), ZhipuError> {
    let invalid = |detail: &str| ZhipuError::invalid("messages", detail);
    if let Some(calls) = obj.get("tool_calls").filter(|c| !c.is_null()) {
        if obj.get("role").and_then(Value::as_str) != Some("assistant") || !calls.is_array() {
            return Err(invalid(
                "tool_calls must be an array on an assistant message",
            ));
        }
    }
    if obj.get("tool_call_id").is_some_and(|id| !id.is_string()) {
        return Err(invalid("tool_call_id must be a string"));
    }
    Ok(())
}

fn check_user_content(content: Option<&Value>) -> Result<(), ZhipuError> {
    let invalid = |detail: &str| ZhipuError::invalid("messages", detail);
    match content {
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(parts)) if !parts.is_empty() => parts.iter().try_for_each(check_part),
        Some(_) => Err(invalid(
            "user content must be a string or a non-empty array",
        )),
        None => Err(ZhipuError::missing("messages.content")),
    }
}

fn check_part(part: &Value) -> Result<(), ZhipuError> {
    let invalid = |detail: &str| ZhipuError::invalid("messages", detail);
    let obj = part
        .as_object()
        .ok_or_else(|| invalid("content parts must be objects"))?;
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
    if !matches!(kind, "text" | "image_url" | "video_url" | "file_url") {
        return Err(invalid(&format!("unsupported content type: {kind}")));
    }
    if let Some(key) = obj.keys().find(|k| *k != "type" && *k != kind) {
        return Err(invalid(&format!("unsupported field in {kind} part: {key}")));
    }
    let payload = obj.get(kind);
    if kind == "text" {
        return match payload {
            Some(Value::String(_)) => Ok(()),
            _ => Err(invalid("text part needs a string text")),
        };
    }
    check_media(kind, payload)
}

/// `image_url`, `video_url` and `file_url` objects hold only `url` (additionalProperties false).
fn check_media(kind: &str, payload: Option<&Value>) -> Result<(), ZhipuError> {
    let obj = payload
        .and_then(Value::as_object)
        .ok_or_else(|| ZhipuError::invalid(kind, "must be an object with a url"))?;
    if let Some(key) = obj.keys().find(|k| *k != "url") {
        return Err(ZhipuError::invalid(
            kind,
            &format!("unsupported field: {key}"),
        ));
    }
    let url = obj
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ZhipuError::invalid(kind, "url must be a non-empty string"))?;
    // Zhipu wants bare base64: its SDK strips the data-URL prefix before sending.
    if kind == "image_url" && url.starts_with("data:") {
        return Err(ZhipuError::new(1214, "图片输入格式/解析错误"));
    }
    Ok(())
}

/// Validates `tools` and returns them (empty when absent).
pub(crate) fn check_tools(value: Option<&Value>) -> Result<&[Value], ZhipuError> {
    let Some(value) = value else {
        return Ok(&[]);
    };
    let tools = match value.as_array() {
        Some(list) if list.len() <= MAX_TOOLS => list.as_slice(),
        _ => {
            return Err(ZhipuError::invalid(
                "tools",
                "must be an array of at most 128 tools",
            ))
        }
    };
    for tool in tools {
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => check_function_tool(tool)?,
            Some("retrieval" | "web_search" | "mcp") => {}
            _ => return Err(ZhipuError::invalid("tools", "unsupported tool type")),
        }
    }
    Ok(tools)
}

fn check_function_tool(tool: &Value) -> Result<(), ZhipuError> {
    let invalid = |detail: &str| ZhipuError::invalid("tools", detail);
    let obj = tool
        .as_object()
        .ok_or_else(|| invalid("tool must be an object"))?;
    if obj.keys().any(|k| k != "type" && k != "function") {
        return Err(invalid("a function tool holds only type and function"));
    }
    let function = obj
        .get("function")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("function must be an object"))?;
    if let Some(key) = function
        .keys()
        .find(|k| !FUNCTION_KEYS.contains(&k.as_str()))
    {
        return Err(invalid(&format!("unsupported function field: {key}")));
    }
    let name = function.get("name").and_then(Value::as_str).unwrap_or("");
    if !valid_function_name(name) {
        return Err(invalid("function.name must match ^[a-zA-Z0-9_-]{1,64}$"));
    }
    if !function.get("description").is_some_and(Value::is_string) {
        return Err(invalid("function.description is required"));
    }
    if !function.get("parameters").is_some_and(Value::is_object) {
        return Err(invalid("function.parameters is required"));
    }
    Ok(())
}

fn valid_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn function_names_follow_the_pattern() {
        assert!(valid_function_name("get_weather-2"));
        assert!(!valid_function_name(""));
        assert!(!valid_function_name("get weather"));
        assert!(!valid_function_name(&"a".repeat(65)));
    }

    #[test]
    fn strict_and_detail_are_rejected() {
        let tool = json!({"type": "function", "function": {
            "name": "f", "description": "d", "parameters": {}, "strict": true}});
        assert!(check_tools(Some(&json!([tool]))).is_err());
        let part = json!({"type": "image_url", "image_url": {"url": "abc", "detail": "low"}});
        assert!(check_part(&part).is_err());
    }
}
