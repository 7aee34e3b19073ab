//! A request body parsed into its typed shape, every failure an OpenAI-shaped 400 that names
//! the field in `param` (bad JSON is `invalid_json`).

use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(ErrorCode::InvalidJson, format!(
                "We could not parse the JSON body of your request ({inner}). The body must be valid JSON."
            ));
        }
        let message = inner.to_string();
        let error = ApiError::invalid_request(format!("Invalid request body: {message}"));
        // A missing field is reported at its parent; name the field itself.
        let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
        match (path.as_str(), missing) {
            (".", Some(field)) => error.param(field),
            (parent, Some(field)) => error.param(format!("{parent}.{field}")),
            (".", None) => error,
            (field, None) => error.param(field),
        }
    })?;
    deserializer.end().map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("We could not parse the JSON body of your request ({e})."),
        )
    })?;
    Ok(value)
}
