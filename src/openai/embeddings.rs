//! The embeddings request as OpenAI clients send it, its split into Zhipu calls of at most the
//! model's batch size (the catalogue's `max_batch`), and the joined answer in the encoding the
//! client asked for.

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::catalogue::Catalogue;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json_path::At;

/// Inputs per upstream call for a model the catalogue gives no `max_batch`: Zhipu's limit for
/// embedding-3.
pub const MAX_BATCH: usize = 64;

#[derive(Debug, Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: Value,
    pub encoding_format: Option<String>,
    pub dimensions: Option<i64>,
    /// Zhipu's embeddings take no user id.
    #[serde(rename = "user")]
    pub _user: Option<String>,
    /// GLM-only fields, passed upstream untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Float,
    Base64,
}

/// The translated request: the texts in order, and what every upstream call shares.
#[derive(Debug)]
pub struct EmbeddingPlan {
    pub inputs: Vec<String>,
    encoding: Encoding,
    /// The body of every upstream call, without `input`.
    base: Map<String, Value>,
    /// Inputs per upstream call.
    batch: usize,
}

impl EmbeddingPlan {
    pub fn new(request: EmbeddingRequest, upstream_model: &str) -> ApiResult<Self> {
        let inputs = texts(request.input)?;
        let encoding = match request.encoding_format.as_deref() {
            None | Some("float") => Encoding::Float,
            Some("base64") => Encoding::Base64,
            Some(other) => {
                return Err(ApiError::invalid_request(format!(
                    "encoding_format must be `float` or `base64`, not `{other}`."
                ))
                .param("encoding_format"))
            }
        };
        let mut base = request.extra;
        base.insert("model".to_owned(), Value::from(upstream_model));
        if let Some(dimensions) = request.dimensions {
            check_dimensions(upstream_model, dimensions)?;
            base.insert("dimensions".to_owned(), Value::from(dimensions));
        }
        let batch = Catalogue::builtin()
            .model(upstream_model)
            .max_batch
            .unwrap_or(MAX_BATCH)
            .max(1);
        Ok(Self {
            inputs,
            encoding,
            base,
            batch,
        })
    }

    /// One upstream body per batch of at most the model's batch size, in order.
    pub fn batches(&self) -> impl Iterator<Item = Value> + '_ {
        self.inputs.chunks(self.batch).map(|batch| {
            let mut body = self.base.clone();
            body.insert("input".to_owned(), json!(batch));
            Value::Object(body)
        })
    }

    /// Joins the batches' answers (in the order of `batches`) into OpenAI's answer.
    pub fn respond(&self, answers: &[Value]) -> ApiResult<Value> {
        let mut data = Vec::with_capacity(self.inputs.len());
        let mut model = Value::Null;
        let (mut prompt, mut total) = (0, 0);
        for (batch, answer) in answers.iter().enumerate() {
            let offset = batch * self.batch;
            let expected = self.inputs.len().saturating_sub(offset).min(self.batch);
            let mut items = vector_items(answer, expected)?;
            items.sort_by_key(|(index, _)| *index);
            for (index, vector) in items {
                data.push(json!({
                    "object": "embedding",
                    "index": offset + index,
                    "embedding": self.encode(vector)?,
                }));
            }
            if model.is_null() {
                model = answer.get("model").cloned().unwrap_or(Value::Null);
            }
            let count = |key: &str| answer.at(key).and_then(Value::as_i64).unwrap_or(0);
            prompt += count("/usage/prompt_tokens");
            total += count("/usage/total_tokens");
        }
        Ok(json!({
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt, "total_tokens": total},
        }))
    }

    /// Floats as the upstream sent them, or little-endian float32 in base64 (what the OpenAI
    /// SDKs decode when they asked for it).
    fn encode(&self, vector: &[Value]) -> ApiResult<Value> {
        if self.encoding == Encoding::Float {
            return Ok(Value::Array(vector.to_vec()));
        }
        let mut bytes = Vec::with_capacity(vector.len() * 4);
        for value in vector {
            let number = value.as_f64().ok_or_else(invalid_answer)?;
            // Narrowing to float32 is the encoding's point.
            bytes.extend_from_slice(&(number as f32).to_le_bytes());
        }
        Ok(Value::from(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ))
    }
}

/// The input as texts. Token ids (what LangChain's `OpenAIEmbeddings` sends by default) are
/// refused: GLM would read them as text and answer garbage.
fn texts(input: Value) -> ApiResult<Vec<String>> {
    let invalid = |message: &str| Err(ApiError::invalid_request(message).param("input"));
    let texts = match input {
        Value::String(text) => vec![text],
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::String(text) => Some(text),
                _ => None,
            })
            .collect(),
        Value::Array(items) if items.iter().any(|i| i.is_number() || i.is_array()) => {
            return invalid(
                "GLM embedding models take text, not token ids. LangChain's OpenAIEmbeddings \
                 sends token ids by default: create it with check_embedding_ctx_length=False.",
            )
        }
        _ => return invalid("input must be a string or an array of strings."),
    };
    if texts.is_empty() {
        return invalid("input must not be empty.");
    }
    if texts.iter().any(String::is_empty) {
        return invalid("input must not contain empty strings.");
    }
    Ok(texts)
}

/// The catalogue's `dimensions` for the model; a model with only `default_dimensions` has
/// them fixed. A model the catalogue gives neither is the upstream's business.
fn check_dimensions(model: &str, dimensions: i64) -> ApiResult<()> {
    let refuse = |message: String| Err(ApiError::invalid_request(message).param("dimensions"));
    let info = Catalogue::builtin().model(model);
    match (&info.dimensions, info.default_dimensions) {
        (None, Some(_)) => refuse(format!(
            "The model `{model}` has fixed dimensions and does not take `dimensions`."
        )),
        (Some(allowed), _) if !allowed.contains(&dimensions) => refuse(format!(
            "The model `{model}` supports dimensions {allowed:?}, not {dimensions}."
        )),
        _ => Ok(()),
    }
}

/// `(index, vector)` of each item of one upstream answer, which must hold `expected` of them.
fn vector_items(answer: &Value, expected: usize) -> ApiResult<Vec<(usize, &[Value])>> {
    let items = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(invalid_answer)?;
    if items.len() != expected {
        return Err(invalid_answer());
    }
    items
        .iter()
        .enumerate()
        .map(|(at, item)| {
            let index = item
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|i| usize::try_from(i).ok())
                .unwrap_or(at);
            let vector = item
                .get("embedding")
                .and_then(Value::as_array)
                .ok_or_else(invalid_answer)?;
            (index < expected)
                .then_some((index, vector.as_slice()))
                .ok_or_else(invalid_answer)
        })
        .collect()
}

fn invalid_answer() -> ApiError {
    ApiError::new(
        ErrorCode::UpstreamInvalidResponse,
        "The upstream's embeddings answer is not in the expected shape.",
    )
}

#[cfg(test)]
mod tests;
