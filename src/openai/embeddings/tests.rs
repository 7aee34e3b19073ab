use base64::Engine;
use serde_json::json;

use super::*;

fn request(body: Value) -> EmbeddingRequest {
    serde_json::from_value(body).unwrap()
}

fn plan(body: Value) -> ApiResult<EmbeddingPlan> {
    EmbeddingPlan::new(request(body), "embedding-3")
}

fn answer(vectors: &[&[f64]], tokens: i64) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| json!({"index": index, "object": "embedding", "embedding": v}))
        .collect();
    json!({"model": "embedding-3", "object": "list", "data": data,
        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}})
}

#[test]
fn token_ids_are_refused_naming_the_langchain_switch() {
    for input in [json!([[1, 2, 3]]), json!([1, 2, 3])] {
        let error = plan(json!({"model": "m", "input": input})).unwrap_err();
        assert_eq!(error.status().as_u16(), 400);
        assert_eq!(error.param.as_deref(), Some("input"));
        assert!(error.message.contains("check_embedding_ctx_length=False"));
    }
}

#[test]
fn bad_inputs_are_400s_on_input() {
    for input in [
        json!(""),
        json!([]),
        json!(["a", ""]),
        json!(null),
        json!({"a": 1}),
    ] {
        let error = plan(json!({"model": "m", "input": input})).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("input"), "{error}");
    }
}

#[test]
fn more_than_a_batch_is_split_in_order() {
    let inputs: Vec<String> = (0..130).map(|i| format!("text {i}")).collect();
    let plan = plan(json!({"model": "m", "input": inputs})).unwrap();
    let batches: Vec<Value> = plan.batches().collect();
    let sizes: Vec<usize> = batches
        .iter()
        .map(|b| b["input"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [64, 64, 2]);
    assert_eq!(batches[2]["input"][1], "text 129");
    assert_eq!(batches[0]["model"], "embedding-3");
    assert!(batches[0].get("encoding_format").is_none());
}

#[test]
fn answers_join_in_order_with_usage_summed() {
    let plan =
        plan(json!({"model": "m", "input": (0..66).map(|i| i.to_string()).collect::<Vec<_>>()}))
            .unwrap();
    let first: Vec<&[f64]> = (0..64).map(|_| &[0.5][..]).collect();
    let mut second = answer(&[&[1.0], &[2.0]], 3);
    // The upstream may list items out of order; `index` decides.
    second["data"].as_array_mut().unwrap().reverse();
    let joined = plan.respond(&[answer(&first, 10), second]).unwrap();
    let data = joined["data"].as_array().unwrap();
    assert_eq!(data.len(), 66);
    assert_eq!(
        (data[64]["index"].clone(), data[64]["embedding"][0].clone()),
        (json!(64), json!(1.0))
    );
    assert_eq!(data[65]["embedding"][0], 2.0);
    assert_eq!(
        joined["usage"],
        json!({"prompt_tokens": 13, "total_tokens": 13})
    );
}

#[test]
fn base64_is_little_endian_float32() {
    let plan = plan(json!({"model": "m", "input": "a", "encoding_format": "base64"})).unwrap();
    let vector = [0.125, -1.5, 0.1];
    let joined = plan.respond(&[answer(&[&vector], 1)]).unwrap();
    let encoded = joined["data"][0]["embedding"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(decoded, [0.125f32, -1.5, 0.1]);
}

#[test]
fn a_short_answer_is_a_502() {
    let plan = plan(json!({"model": "m", "input": ["a", "b"]})).unwrap();
    assert_eq!(
        plan.respond(&[answer(&[&[1.0]], 1)])
            .unwrap_err()
            .status()
            .as_u16(),
        502
    );
}

#[test]
fn dimensions_follow_the_model() {
    let with = |model: &str, dimensions: i64| {
        EmbeddingPlan::new(
            request(json!({"model": "m", "input": "a", "dimensions": dimensions})),
            model,
        )
    };
    assert_eq!(
        with("embedding-3", 256).unwrap().batches().next().unwrap()["dimensions"],
        256
    );
    assert_eq!(
        with("embedding-3", 300).unwrap_err().param.as_deref(),
        Some("dimensions")
    );
    assert_eq!(
        with("embedding-2", 1024).unwrap_err().param.as_deref(),
        Some("dimensions")
    );
    assert!(
        with("embedding-9", 300).is_ok(),
        "unknown models get it passed through"
    );
    let error = plan(json!({"model": "m", "input": "a", "encoding_format": "int8"})).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("encoding_format"));
}
