//! Keeping promises GLM cannot keep itself: `response_format: json_schema` (GLM only has
//! `json_object`) and a forced `tool_choice` (GLM only has `"auto"`). The request is rewritten
//! (an instruction, the schema verbatim, only the named tool), and the answer is checked and,
//! if it breaks the promise, repaired by one more call.
//!
//! The API the chat handler uses, in order:
//! 1. `to_glm` already rewrote the body with emulation on and put the plan in
//!    `GlmChatRequest::emulation`.
//! 2. `glm.settle_emulation(&config.emulation) -> EmulationSwitches`: applies the per-model
//!    `[emulation]` switches; where one is off the rewrite is undone (back to the plain
//!    downgrade: `json_object` unchecked, `tool_choice: "auto"` with every tool) and
//!    `glm.emulation` becomes `None`. Call it before sending the body.
//! 3. With `Some(emulation)`: set `x-glm-gateway-emulated: emulation.header_value()` on the
//!    response, and note it in the ledger.
//! 4. `emulation.validate(&answer)` on the OpenAI-shaped `chat.completion` (after `from_glm`):
//!    `Err(errors)` lists what is wrong. Up to `switches.repair_attempts` times, send
//!    `emulation.repair_body(&glm.body, &answer, &errors)` (never streamed, with a fresh
//!    `request_id`), translate its answer with `from_glm` and validate again; the usage of every
//!    call counts. The last answer goes to the client either way.
//!
//! A streamed answer cannot be checked before it is sent: the rewrite still helps it, and a
//! handler that wants the check buffers the stream.

use serde_json::{json, Map, Value};

use super::tools::{self, function_name, SchemaDemand, ToolDemand};
use crate::config::EmulationSwitches;
use crate::error::{ApiError, ApiResult};

/// Validation errors listed in a repair request, at most.
const MAX_ERRORS: usize = 20;

/// The plan for one request: what was promised and how the body was rewritten for it.
#[derive(Debug, Clone)]
pub struct Emulation {
    demand: Demand,
    /// The system message put first in `messages`.
    instruction: String,
    /// Every tool as translated, when only the named one is sent; restored if switched off.
    all_tools: Option<Vec<Value>>,
}

#[derive(Debug, Clone)]
enum Demand {
    JsonSchema(SchemaDemand),
    Tool(ToolDemand),
}

/// Translates `tools`, `tool_choice` and `response_format` into `body` (see `tools`) and,
/// where a promise is lost in translation, rewrites the body to keep it. A forced tool call
/// wins over a schema: its answer is a call, not content.
pub(crate) fn apply(
    body: &mut Map<String, Value>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    response_format: Option<Value>,
) -> ApiResult<Option<Emulation>> {
    let tool_demand = tools::apply_tools(body, tools, tool_choice)?;
    let schema_demand = tools::apply_response_format(body, response_format)?;
    let emulation = match (tool_demand, schema_demand) {
        (Some(demand), _) => Some(plan_tool(body, demand)),
        (None, Some(demand)) => Some(plan_schema(demand)?),
        (None, None) => None,
    };
    if let Some(emulation) = &emulation {
        if let Some(Value::Array(messages)) = body.get_mut("messages") {
            messages.insert(0, system(&emulation.instruction));
        }
    }
    Ok(emulation)
}

fn plan_tool(body: &mut Map<String, Value>, demand: ToolDemand) -> Emulation {
    let mut all_tools = None;
    let instruction = match &demand {
        ToolDemand::Named(name) => {
            if let Some(Value::Array(tools)) = body.get_mut("tools") {
                let named: Vec<Value> = tools
                    .iter()
                    .filter(|tool| function_name(tool) == Some(name.as_str()))
                    .cloned()
                    .collect();
                all_tools = Some(std::mem::replace(tools, named));
            }
            format!(
                "You must answer by calling the function `{name}`, with arguments that match \
                 its parameters. Do not answer with text."
            )
        }
        ToolDemand::Required => {
            "You must answer by calling one or more of the provided functions, with arguments \
             that match their parameters. Do not answer with text."
                .to_owned()
        }
    };
    Emulation {
        demand: Demand::Tool(demand),
        instruction,
        all_tools,
    }
}

/// A schema the validator cannot compile is refused now, as OpenAI refuses it, rather than
/// failing every answer later.
fn plan_schema(demand: SchemaDemand) -> ApiResult<Emulation> {
    if let Err(error) = jsonschema::validator_for(&demand.schema) {
        return Err(ApiError::invalid_request(format!(
            "response_format.json_schema.schema is not a valid JSON Schema: {error}"
        ))
        .param("response_format.json_schema.schema"));
    }
    let about = match &demand.description {
        Some(description) => format!(" (named `{}`: {description})", demand.name),
        None => format!(" (named `{}`)", demand.name),
    };
    let instruction = format!(
        "You must answer with a single JSON value that conforms to the JSON Schema below{about}. \
         Output only the JSON: no explanation, no Markdown, no code fences.\nJSON Schema:\n{}",
        demand.schema
    );
    Ok(Emulation {
        demand: Demand::JsonSchema(demand),
        instruction,
        all_tools: None,
    })
}

fn system(text: &str) -> Value {
    json!({"role": "system", "content": text})
}

impl Emulation {
    /// Whether the per-model switches keep this emulation on.
    pub fn switched_on(&self, switches: &EmulationSwitches) -> bool {
        match self.demand {
            Demand::JsonSchema(_) => switches.json_schema,
            Demand::Tool(_) => switches.tool_choice,
        }
    }

    /// The value of the `x-glm-gateway-emulated` response header.
    pub fn header_value(&self) -> &'static str {
        match self.demand {
            Demand::JsonSchema(_) => "json_schema",
            Demand::Tool(_) => "tool_choice",
        }
    }

    /// Whether `answer` (an OpenAI-shaped `chat.completion`) keeps the promise; if not, what
    /// is wrong, one line per problem.
    pub fn validate(&self, answer: &Value) -> Result<(), Vec<String>> {
        let message = answer.pointer("/choices/0/message");
        let calls = message
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
            .filter(|calls| !calls.is_empty());
        match &self.demand {
            // An answer that calls a tool is not the final answer the schema is for.
            Demand::JsonSchema(_) if calls.is_some() => Ok(()),
            Demand::JsonSchema(demand) => {
                let content = message
                    .and_then(|m| m.get("content"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                validate_json(&demand.schema, content)
            }
            Demand::Tool(demand) => validate_calls(demand, calls.map(Vec::as_slice)),
        }
    }

    /// The body of the repair call: `original_glm_body` (the body sent first) with the
    /// model's answer and a user message listing `errors` appended; never streamed, with a
    /// fresh `request_id` (Zhipu refuses a reused one).
    pub fn repair_body(
        &self,
        original_glm_body: &Map<String, Value>,
        answer: &Value,
        errors: &[String],
    ) -> Map<String, Value> {
        let mut body = original_glm_body.clone();
        body.remove("stream");
        body.remove("tool_stream");
        let request_id = uuid::Uuid::now_v7().simple().to_string();
        body.insert("request_id".to_owned(), Value::String(request_id));
        let content = answer
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .unwrap_or("");
        let listed: Vec<String> = errors
            .iter()
            .take(MAX_ERRORS)
            .map(|e| format!("- {e}"))
            .collect();
        let request = match &self.demand {
            Demand::JsonSchema(_) => format!(
                "Your previous answer did not match the schema. Validation errors:\n{}\nReply \
                 again with only the corrected JSON, no other text.",
                listed.join("\n")
            ),
            Demand::Tool(ToolDemand::Named(name)) => format!(
                "Your previous answer did not call the function `{name}` correctly:\n{}\nCall \
                 the function `{name}` now, with arguments that match its parameters.",
                listed.join("\n")
            ),
            Demand::Tool(ToolDemand::Required) => format!(
                "Your previous answer did not call a function correctly:\n{}\nCall one of the \
                 provided functions now, with arguments that match its parameters.",
                listed.join("\n")
            ),
        };
        if let Some(Value::Array(messages)) = body.get_mut("messages") {
            let said = if content.is_empty() {
                "(no text)"
            } else {
                content
            };
            messages.push(json!({"role": "assistant", "content": said}));
            messages.push(json!({"role": "user", "content": request}));
        }
        body
    }

    /// Back to the plain downgrade: no instruction, every tool.
    pub(crate) fn undo(self, body: &mut Map<String, Value>) {
        if let Some(Value::Array(messages)) = body.get_mut("messages") {
            let ours = messages
                .first()
                .and_then(|m| m.get("content"))
                .and_then(Value::as_str)
                == Some(self.instruction.as_str());
            if ours {
                messages.remove(0);
            }
        }
        if let Some(all_tools) = self.all_tools {
            body.insert("tools".to_owned(), Value::Array(all_tools));
        }
    }
}

fn validate_json(schema: &Value, content: &str) -> Result<(), Vec<String>> {
    if content.trim().is_empty() {
        return Err(vec![
            "the answer is empty; a JSON value is required".to_owned()
        ]);
    }
    let instance: Value = serde_json::from_str(content.trim())
        .map_err(|e| vec![format!("the answer is not valid JSON: {e}")])?;
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| vec![format!("the schema cannot be used: {e}")])?;
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .take(MAX_ERRORS)
        .map(|error| {
            let path = error.instance_path().to_string();
            let at = if path.is_empty() { "/" } else { path.as_str() };
            format!("at `{at}`: {error}")
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn validate_calls(demand: &ToolDemand, calls: Option<&[Value]>) -> Result<(), Vec<String>> {
    let Some(calls) = calls else {
        return Err(vec![match demand {
            ToolDemand::Named(name) => format!("the answer did not call the function `{name}`"),
            ToolDemand::Required => "the answer did not call any function".to_owned(),
        }]);
    };
    let mut errors = Vec::new();
    for call in calls {
        let name = call.pointer("/function/name").and_then(Value::as_str);
        if let ToolDemand::Named(wanted) = demand {
            if name != Some(wanted.as_str()) {
                errors.push(format!(
                    "the answer called `{}` instead of `{wanted}`",
                    name.unwrap_or("?")
                ));
                continue;
            }
        }
        let arguments = call.pointer("/function/arguments").and_then(Value::as_str);
        if arguments.is_none_or(|a| serde_json::from_str::<Map<String, Value>>(a).is_err()) {
            errors.push(format!(
                "the arguments of `{}` are not a JSON object",
                name.unwrap_or("?")
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests;
