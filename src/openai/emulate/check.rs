//! Whether an answer keeps a promise: JSON that validates against the schema, or a call of the
//! demanded function with JSON-object arguments. Reads only [`Said`], so every API's answers
//! are checked by the same code.

use serde_json::{Map, Value};

use super::ToolDemand;

/// Validation errors listed, at most.
pub(super) const MAX_ERRORS: usize = 20;

/// What an answer said, whatever API it came from: its text and its function calls.
#[derive(Debug, Default)]
pub(super) struct Said<'a> {
    pub text: String,
    pub calls: Vec<Call<'a>>,
}

#[derive(Debug)]
pub(super) struct Call<'a> {
    pub name: Option<&'a str>,
    pub arguments: Option<&'a str>,
}

pub(super) fn validate_json(schema: &Value, content: &str) -> Result<(), Vec<String>> {
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

pub(super) fn validate_calls(demand: &ToolDemand, calls: &[Call<'_>]) -> Result<(), Vec<String>> {
    if calls.is_empty() {
        return Err(vec![match demand {
            ToolDemand::Named(name) => format!("the answer did not call the function `{name}`"),
            ToolDemand::Required => "the answer did not call any function".to_owned(),
        }]);
    }
    let mut errors = Vec::new();
    for call in calls {
        if let ToolDemand::Named(wanted) = demand {
            if call.name != Some(wanted.as_str()) {
                errors.push(format!(
                    "the answer called `{}` instead of `{wanted}`",
                    call.name.unwrap_or("?")
                ));
                continue;
            }
        }
        let object = call
            .arguments
            .is_some_and(|a| serde_json::from_str::<Map<String, Value>>(a).is_ok());
        if !object {
            errors.push(format!(
                "the arguments of `{}` are not a JSON object",
                call.name.unwrap_or("?")
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
