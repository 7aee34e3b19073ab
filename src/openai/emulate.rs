//! Keeping promises GLM cannot keep itself, on chat completions and on the Responses API alike:
//! a JSON Schema for the answer (GLM only has `json_object`) and a forced `tool_choice` (GLM only
//! has `"auto"`). The request is rewritten (an instruction, the schema verbatim, only the named
//! tool), and the answer is checked and, if it breaks the promise, repaired by one more call.
//! Each API's shapes are read in `surface`; the instructions and the checks exist once.
//!
//! The API a handler uses, in order:
//! 1. The translation (`to_glm`, `to_zhipu`) reads the request's demands and calls [`plan`],
//!    which rewrites the body with emulation on and returns the `Emulation`.
//! 2. [`settle`] (through `settle_emulation` on the translated request) applies the per-model
//!    `[emulation]` switches: where one is off the rewrite is undone (back to the plain
//!    downgrade: `json_object` unchecked, `tool_choice: "auto"` with every tool) and the
//!    emulation becomes `None`. Call it before sending the body.
//! 3. With `Some(emulation)`: set `x-glm-gateway-emulated: emulation.header_value()` on the
//!    response, and note it in the ledger.
//! 4. `emulation.validate(&answer)` on the OpenAI-shaped answer (a `chat.completion` or a
//!    `response`): `Err(errors)` lists what is wrong. Up to `switches.repair_attempts` times,
//!    send `emulation.repair_body(&body, &answer, &errors)` (never streamed), translate its
//!    answer and validate again; the usage of every call counts. The last answer goes to the
//!    client either way.
//!
//! A streamed answer cannot be checked before it is sent: the rewrite still helps it, and a
//! handler that wants the check buffers the stream.

use serde_json::{Map, Value};

use crate::config::{EmulationConfig, EmulationSwitches};
use crate::error::{ApiError, ApiResult};

mod check;
mod surface;

use check::{validate_calls, validate_json, MAX_ERRORS};
pub(crate) use surface::Surface;

/// What a forced `tool_choice` demanded, which GLM's `"auto"` does not enforce.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToolDemand {
    /// `"required"`: some function must be called.
    Required,
    /// A named function must be called.
    Named(String),
}

/// What a `json_schema` format demanded, which GLM's `json_object` does not enforce.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SchemaDemand {
    pub name: String,
    pub description: Option<String>,
    pub schema: Value,
}

impl SchemaDemand {
    /// From the object holding `name`, `description` and `schema` (chat's
    /// `response_format.json_schema`, the Responses API's `text.format`); `None` without a
    /// schema object: plain JSON is then all that can be asked for.
    pub(crate) fn from_spec(spec: &Value) -> Option<Self> {
        let schema = spec
            .get("schema")
            .filter(|s| s.is_object() || s.is_boolean())?;
        let text = |key: &str| spec.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            name: text("name").unwrap_or_else(|| "response".to_owned()),
            description: text("description"),
            schema: schema.clone(),
        })
    }
}

/// The plan for one request: what was promised and how the body was rewritten for it.
#[derive(Debug, Clone)]
pub struct Emulation {
    surface: Surface,
    demand: Demand,
    /// The instruction put into the body (see `Surface::put_instruction`).
    instruction: String,
    /// Every tool as translated, when only the named one is sent; restored if switched off.
    all_tools: Option<Vec<Value>>,
}

#[derive(Debug, Clone)]
enum Demand {
    JsonSchema(SchemaDemand),
    Tool(ToolDemand),
}

/// Rewrites `body` (already translated, with `json_object` and `tool_choice: "auto"`) to keep
/// what was demanded. A forced tool call wins over a schema: its answer is a call, not content.
pub(crate) fn plan(
    surface: Surface,
    body: &mut Map<String, Value>,
    tool: Option<ToolDemand>,
    schema: Option<SchemaDemand>,
) -> ApiResult<Option<Emulation>> {
    let emulation = match (tool, schema) {
        (Some(demand), _) => plan_tool(surface, body, demand),
        (None, Some(demand)) => plan_schema(surface, demand)?,
        (None, None) => return Ok(None),
    };
    surface.put_instruction(body, &emulation.instruction);
    Ok(Some(emulation))
}

fn plan_tool(surface: Surface, body: &mut Map<String, Value>, demand: ToolDemand) -> Emulation {
    let mut all_tools = None;
    let instruction = match &demand {
        ToolDemand::Named(name) => {
            if let Some(Value::Array(tools)) = body.get_mut("tools") {
                let named: Vec<Value> = tools
                    .iter()
                    .filter(|tool| surface.function_name(tool) == Some(name.as_str()))
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
        surface,
        demand: Demand::Tool(demand),
        instruction,
        all_tools,
    }
}

/// A schema the validator cannot compile is refused now, as OpenAI refuses it, rather than
/// failing every answer later.
fn plan_schema(surface: Surface, demand: SchemaDemand) -> ApiResult<Emulation> {
    if let Err(error) = jsonschema::validator_for(&demand.schema) {
        let param = surface.schema_param();
        return Err(ApiError::invalid_request(format!(
            "{param} is not a valid JSON Schema: {error}"
        ))
        .param(param));
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
        surface,
        demand: Demand::JsonSchema(demand),
        instruction,
        all_tools: None,
    })
}

/// Applies the `[emulation]` switches for the body's model (the GLM name sent upstream): where
/// the one this request needs is off, the rewrite is undone and `emulation` becomes `None`.
/// Returns the switches, for `repair_attempts`.
pub(crate) fn settle(
    emulation: &mut Option<Emulation>,
    body: &mut Map<String, Value>,
    config: &EmulationConfig,
) -> EmulationSwitches {
    let model = body.get("model").and_then(Value::as_str).unwrap_or("");
    let switches = config.for_model(model);
    if let Some(off) = emulation.take_if(|e| !e.switched_on(&switches)) {
        off.undo(body);
    }
    switches
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

    /// Whether `answer` (OpenAI-shaped, of this request's API) keeps the promise; if not,
    /// what is wrong, one line per problem.
    pub fn validate(&self, answer: &Value) -> Result<(), Vec<String>> {
        let said = self.surface.said(answer);
        match &self.demand {
            // An answer that calls a tool is not the final answer the schema is for.
            Demand::JsonSchema(_) if !said.calls.is_empty() => Ok(()),
            Demand::JsonSchema(demand) => validate_json(&demand.schema, &said.text),
            Demand::Tool(demand) => validate_calls(demand, &said.calls),
        }
    }

    /// The body of the repair call: `original` (the body sent first) with the model's answer
    /// and a user message listing `errors` appended; never streamed.
    pub fn repair_body(
        &self,
        original: &Map<String, Value>,
        answer: &Value,
        errors: &[String],
    ) -> Map<String, Value> {
        let listed: Vec<String> = errors
            .iter()
            .take(MAX_ERRORS)
            .map(|e| format!("- {e}"))
            .collect();
        let listed = listed.join("\n");
        let request = match &self.demand {
            Demand::JsonSchema(_) => format!(
                "Your previous answer did not match the schema. Validation errors:\n{listed}\n\
                 Reply again with only the corrected JSON, no other text."
            ),
            Demand::Tool(ToolDemand::Named(name)) => format!(
                "Your previous answer did not call the function `{name}` correctly:\n{listed}\n\
                 Call the function `{name}` now, with arguments that match its parameters."
            ),
            Demand::Tool(ToolDemand::Required) => format!(
                "Your previous answer did not call a function correctly:\n{listed}\nCall one \
                 of the provided functions now, with arguments that match its parameters."
            ),
        };
        let said = self.surface.said(answer);
        let said = if said.text.is_empty() {
            "(no text)"
        } else {
            said.text.as_str()
        };
        let mut body = original.clone();
        self.surface.add_repair_turns(&mut body, said, &request);
        body
    }

    /// Back to the plain downgrade: no instruction, every tool.
    fn undo(self, body: &mut Map<String, Value>) {
        self.surface.take_instruction(body, &self.instruction);
        if let Some(all_tools) = self.all_tools {
            body.insert("tools".to_owned(), Value::Array(all_tools));
        }
    }
}

#[cfg(test)]
mod tests;
