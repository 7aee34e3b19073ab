//! `POST /embeddings`: Zhipu's embedding-2 and embedding-3, with their input and dimension
//! rules, and deterministic unit vectors so tests can predict every number of an answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::auth;
use super::errors::ZhipuError;
use super::state::Shared;
use super::validate::field;

/// embedding-3's limit on the number of inputs in one call.
const MAX_ITEMS: usize = 64;
const EMBEDDING_3_DIMENSIONS: &[usize] = &[256, 512, 1024, 2048];
const EMBEDDING_3_DEFAULT: usize = 2048;
const EMBEDDING_2_DIMENSIONS: usize = 1024;

pub(crate) async fn embeddings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now_ms = chrono::Utc::now().timestamp_millis();
    if let Err(err) = auth::check(&shared.keys, &headers, now_ms) {
        return err.into_response();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return ZhipuError::new(1210, "请求体必须是JSON对象").into_response();
    };
    match answer(&body) {
        Ok(answer) => Json(answer).into_response(),
        Err(err) => err.into_response(),
    }
}

/// Validates the body and builds the answer. `encoding_format`, `user` and any other extra
/// field are ignored and the vectors are always float arrays, as real Zhipu does: a proxy that
/// relies on the upstream to honour `encoding_format: "base64"` breaks here as it would there.
fn answer(body: &Value) -> Result<Value, ZhipuError> {
    let Some(obj) = body.as_object() else {
        return Err(ZhipuError::new(1210, "请求体必须是JSON对象"));
    };
    let model = field(obj, "model").ok_or_else(|| ZhipuError::missing("model"))?;
    let model = model
        .as_str()
        .ok_or_else(|| ZhipuError::invalid("model", "must be a string"))?;
    let dimensions = dimensions(obj, model)?;
    let inputs = inputs(field(obj, "input"))?;
    let mut tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            tokens += embedding_tokens(text);
            json!({
                "index": index,
                "object": "embedding",
                "embedding": embedding_vector(text, dimensions),
            })
        })
        .collect();
    Ok(json!({
        "model": model,
        "object": "list",
        "data": data,
        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
    }))
}

/// The vector length for `model`, or 1211 for a model that does not embed.
fn dimensions(obj: &Map<String, Value>, model: &str) -> Result<usize, ZhipuError> {
    let requested = field(obj, "dimensions");
    match model {
        "embedding-3" => {
            let Some(value) = requested else {
                return Ok(EMBEDDING_3_DEFAULT);
            };
            value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| EMBEDDING_3_DIMENSIONS.contains(n))
                .ok_or_else(|| {
                    let detail = "dimensions must be one of 256, 512, 1024, 2048 for embedding-3";
                    ZhipuError::invalid("dimensions", detail)
                })
        }
        "embedding-2" => match requested {
            None => Ok(EMBEDDING_2_DIMENSIONS),
            Some(_) => {
                let detail = "embedding-2 has fixed 1024 dimensions and takes no dimensions";
                Err(ZhipuError::invalid("dimensions", detail))
            }
        },
        _ => Err(ZhipuError::from_code(1211)),
    }
}

/// The texts to embed: a non-empty string, or 1 to 64 non-empty strings. Token-id arrays
/// (what LangChain sends by default) are refused like any other non-string input.
fn inputs(value: Option<&Value>) -> Result<Vec<&str>, ZhipuError> {
    let invalid = |detail: &str| ZhipuError::invalid("input", detail);
    let shape = "input must be a non-empty string or an array of non-empty strings";
    let texts = match value {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid(shape))?,
        _ => return Err(invalid(shape)),
    };
    if texts.iter().any(|t| t.is_empty()) {
        return Err(invalid(shape));
    }
    if texts.len() > MAX_ITEMS {
        return Err(invalid("input holds at most 64 items"));
    }
    Ok(texts)
}

/// The emulator's embedding of `text`: `dimensions` values, L2-normalised, the same on every
/// call. Each value is an `f32` (serialised through `f64` without change), so a client that
/// re-encodes the floats as little-endian f32 base64 and decodes them gets identical numbers.
pub fn embedding_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut state = fnv1a(text.as_bytes()) ^ (dimensions as u64).rotate_left(32);
    if state == 0 {
        state = 0x9e37_79b9_7f4a_7c15;
    }
    let raw: Vec<f64> = (0..dimensions)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // The top 53 bits as a fraction in [0,1), then mapped to [-1,1).
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|v| v * v).sum::<f64>().sqrt();
    let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    raw.iter().map(|v| (v * scale) as f32).collect()
}

/// The tokens the emulator bills for one input: a third of its characters, at least 1.
pub fn embedding_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(3).max(1)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_unit_vectors() {
        let a = embedding_vector("hello", 256);
        assert_eq!(a, embedding_vector("hello", 256));
        assert_ne!(a, embedding_vector("hellp", 256));
        assert_eq!(a.len(), 256);
        let norm: f64 = a.iter().map(|v| f64::from(*v) * f64::from(*v)).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(a.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert_eq!(embedding_tokens("abcd"), 2);
        assert_eq!(embedding_tokens("é"), 1);
    }

    #[test]
    fn floats_round_trip_through_json() {
        let v = embedding_vector("round trip", 64);
        let text = json!(v).to_string();
        let back: Vec<f32> = serde_json::from_str(&text).expect("floats");
        assert!(v.iter().zip(&back).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
