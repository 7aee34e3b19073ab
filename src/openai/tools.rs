//! Tools, tool_choice and response_format: OpenAI's shapes fitted into the subset GLM accepts,
//! downgrading where GLM has a weaker equivalent and refusing where it has none. What a
//! downgrade loses (a forced tool, a schema) is returned, for `emulate` to keep the promise.

use serde_json::{json, Map, Value};

use super::emulate::{SchemaDemand, Surface, ToolDemand};
use crate::error::{ApiError, ApiResult};

/// GLM tool types that have no OpenAI counterpart and pass through untouched.
const GLM_TOOLS: &[&str] = &["retrieval", "web_search", "mcp"];

/// `tool_choice` after translation.
#[derive(Debug, PartialEq)]
enum ToolChoice {
    Auto,
    None,
    Required,
    Named(String),
}

/// GLM's `tool_choice` accepts only `"auto"`: `"required"` and a named function are sent as
/// `"auto"` (and returned as a `ToolDemand`), `allowed_tools` is sent as `"auto"`, and
/// `"none"` is honoured by not sending the tools at all.
fn parse_tool_choice(choice: Value) -> ApiResult<ToolChoice> {
    match choice {
        Value::String(s) if s == "none" => Ok(ToolChoice::None),
        Value::String(s) if s == "auto" => Ok(ToolChoice::Auto),
        Value::String(s) if s == "required" => Ok(ToolChoice::Required),
        Value::Object(choice) => {
            let named = choice
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| choice.get("type").and_then(Value::as_str) == Some("function"));
            Ok(named.map_or(ToolChoice::Auto, |name| ToolChoice::Named(name.to_owned())))
        }
        _ => Err(ApiError::invalid_request(
            "tool_choice must be \"none\", \"auto\", \"required\" or a tool object",
        )
        .param("tool_choice")),
    }
}

/// Sets `tools` and `tool_choice`; a choice without tools is dropped with them. Returns what
/// a forced choice demanded, when there are function tools to demand it of.
pub(crate) fn apply_tools(
    body: &mut Map<String, Value>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
) -> ApiResult<Option<ToolDemand>> {
    let choice = tool_choice.map(parse_tool_choice).transpose()?;
    let Some(tools) = tools.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if choice == Some(ToolChoice::None) {
        return Ok(None);
    }
    let tools = tools
        .into_iter()
        .enumerate()
        .map(|(i, tool)| tool_to_glm(i, tool))
        .collect::<ApiResult<Vec<_>>>()?;
    let chosen = choice.is_some();
    let demand = match choice {
        Some(ToolChoice::Named(name)) => {
            if !tools
                .iter()
                .any(|tool| Surface::Chat.function_name(tool) == Some(name.as_str()))
            {
                return Err(ApiError::invalid_request(format!(
                    "tool_choice names the function `{name}`, which is not in tools"
                ))
                .param("tool_choice"));
            }
            Some(ToolDemand::Named(name))
        }
        Some(ToolChoice::Required)
            if tools
                .iter()
                .any(|t| Surface::Chat.function_name(t).is_some()) =>
        {
            Some(ToolDemand::Required)
        }
        _ => None,
    };
    body.insert("tools".to_owned(), Value::Array(tools));
    if chosen {
        body.insert("tool_choice".to_owned(), Value::from("auto"));
    }
    Ok(demand)
}

fn tool_to_glm(i: usize, tool: Value) -> ApiResult<Value> {
    let Value::Object(mut tool) = tool else {
        return Err(tool_error(format!("tools[{i}] must be an object")));
    };
    match tool.get("type").and_then(Value::as_str) {
        Some("function") => {
            let function = tool.remove("function");
            function_to_glm(i, function)
        }
        Some(kind) if GLM_TOOLS.contains(&kind) => Ok(Value::Object(tool)),
        Some(kind) => Err(tool_error(format!(
            "tools[{i}] has type `{kind}`; GLM accepts function, retrieval, web_search and mcp tools"
        ))),
        None => Err(tool_error(format!("tools[{i}] has no type"))),
    }
}

/// GLM requires a non-empty `description` and a `parameters` schema; OpenAI makes both
/// optional, so the name and an empty object schema stand in. `strict` and other OpenAI-only
/// keys are dropped.
fn function_to_glm(i: usize, function: Option<Value>) -> ApiResult<Value> {
    let Some(Value::Object(mut function)) = function else {
        return Err(tool_error(format!("tools[{i}].function must be an object")));
    };
    let name = match function.remove("name") {
        Some(Value::String(name)) if !name.is_empty() => name,
        _ => return Err(tool_error(format!("tools[{i}].function.name is required"))),
    };
    let description = match function.remove("description") {
        Some(Value::String(d)) if !d.trim().is_empty() => d,
        _ => name.clone(),
    };
    let parameters = match function.remove("parameters") {
        Some(parameters) if !parameters.is_null() => parameters,
        _ => json!({"type": "object", "properties": {}}),
    };
    let mut glm = Map::new();
    glm.insert("name".to_owned(), Value::String(name));
    glm.insert("description".to_owned(), Value::String(description));
    glm.insert("parameters".to_owned(), parameters);
    let mut tool = Map::new();
    tool.insert("type".to_owned(), Value::from("function"));
    tool.insert("function".to_owned(), Value::Object(glm));
    Ok(Value::Object(tool))
}

fn tool_error(message: String) -> ApiError {
    ApiError::invalid_request(message).param("tools")
}

/// GLM knows `text` and `json_object`. `json_schema` is sent as `json_object` (so the answer
/// is JSON) and its schema returned, for `emulate` to enforce.
pub(crate) fn apply_response_format(
    body: &mut Map<String, Value>,
    format: Option<Value>,
) -> ApiResult<Option<SchemaDemand>> {
    let Some(format) = format else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some(kind @ ("json_object" | "json_schema")) => {
            let spec = format.get("json_schema").filter(|_| kind == "json_schema");
            let demand = spec.and_then(SchemaDemand::from_spec);
            body.insert("response_format".to_owned(), json!({"type": "json_object"}));
            Ok(demand)
        }
        _ => Err(ApiError::invalid_request(
            "response_format.type must be text, json_object or json_schema",
        )
        .param("response_format")),
    }
}
