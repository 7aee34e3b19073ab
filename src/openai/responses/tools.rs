//! The Responses API's `tools`, `tool_choice` and `text.format` fitted to Zhipu's, which has no
//! forced tool choice and no `json_schema`: those are downgraded (`"auto"`, `json_object`) and
//! what they demanded is returned, for `emulate` to keep the promise as for chat.

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::openai::emulate::{SchemaDemand, Surface, ToolDemand};

/// OpenAI tools Zhipu's Response API has no counterpart for.
const REFUSED_TOOLS: &[&str] = &[
    "file_search",
    "computer_use",
    "computer_use_preview",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
];

/// Refuses the tools Zhipu lacks and downgrades a forced `tool_choice` to `"auto"`. Zhipu takes
/// `"none"` and `"auto"` as they are; `"required"` (or `allowed_tools` in required mode) and a
/// named function become a demand, when there are function tools to demand it of; any other
/// choice (a built-in or custom tool) is sent as `"auto"`. A forced choice without tools is
/// dropped, as chat drops it.
pub(super) fn apply_tools(body: &mut Map<String, Value>) -> ApiResult<Option<ToolDemand>> {
    if let Some(Value::Array(tools)) = body.get_mut("tools") {
        for (i, tool) in tools.iter_mut().enumerate() {
            let kind = tool.get("type").and_then(Value::as_str).unwrap_or_default();
            if REFUSED_TOOLS.contains(&kind) {
                let message = format!(
                    "tools[{i}] has type `{kind}`, which Zhipu's Response API does not offer; \
                     it accepts function, custom, namespace and web_search tools."
                );
                return Err(ApiError::invalid_request(message).param("tools"));
            }
            if kind == "web_search_preview" {
                tool["type"] = Value::from("web_search");
            }
        }
    }
    let demand = match body.get("tool_choice") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(choice)) if choice == "none" || choice == "auto" => return Ok(None),
        Some(Value::String(choice)) if choice == "required" => Some(ToolDemand::Required),
        Some(Value::Object(choice)) => match choice.get("type").and_then(Value::as_str) {
            Some("function") => choice
                .get("name")
                .and_then(Value::as_str)
                .map(|name| ToolDemand::Named(name.to_owned())),
            Some("allowed_tools")
                if choice.get("mode").and_then(Value::as_str) == Some("required") =>
            {
                Some(ToolDemand::Required)
            }
            _ => None,
        },
        Some(_) => {
            return Err(ApiError::invalid_request(
                "tool_choice must be \"none\", \"auto\", \"required\" or a tool object",
            )
            .param("tool_choice"))
        }
    };
    let tools = body.get("tools").and_then(Value::as_array);
    let Some(tools) = tools.filter(|tools| !tools.is_empty()) else {
        body.remove("tool_choice");
        return Ok(None);
    };
    let functions: Vec<&str> = tools
        .iter()
        .filter_map(|tool| Surface::Responses.function_name(tool))
        .collect();
    let demand = match demand {
        Some(ToolDemand::Named(name)) if !functions.contains(&name.as_str()) => {
            return Err(ApiError::invalid_request(format!(
                "tool_choice names the function `{name}`, which is not in tools"
            ))
            .param("tool_choice"));
        }
        Some(ToolDemand::Required) if functions.is_empty() => None,
        demand => demand,
    };
    body.insert("tool_choice".to_owned(), Value::from("auto"));
    Ok(demand)
}

/// Zhipu knows `text` and `json_object`: `json_schema` is sent as `json_object` (so the answer
/// is JSON) and its schema returned. `text.verbosity` is dropped.
pub(super) fn apply_text_format(body: &mut Map<String, Value>) -> ApiResult<Option<SchemaDemand>> {
    let Some(Value::Object(text)) = body.get_mut("text") else {
        body.remove("text");
        return Ok(None);
    };
    text.remove("verbosity");
    let Some(format) = text.get("format").filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text" | "json_object") => Ok(None),
        Some("json_schema") => {
            let demand = SchemaDemand::from_spec(format);
            text.insert("format".to_owned(), json!({"type": "json_object"}));
            Ok(demand)
        }
        _ => Err(ApiError::invalid_request(
            "text.format.type must be text, json_object or json_schema",
        )
        .param("text.format")),
    }
}

#[cfg(test)]
mod tests;
