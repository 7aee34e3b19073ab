//! Embeddings: the answer's shape and numbers, and every input and dimension rule.

use serde_json::{json, Value};

use super::{error_code, Emulator};
use crate::emulator::{embedding_tokens, embedding_vector};

async fn embed(emu: &Emulator, body: Value) -> reqwest::Response {
    emu.post("/embeddings", &body).await
}

#[tokio::test]
async fn answer_has_zhipus_shape_and_predictable_floats() {
    let emu = Emulator::start().await;
    let body = json!({"model": "embedding-3", "input": ["hello", "wide world"],
        "dimensions": 256, "encoding_format": "base64", "user": "u1"});
    let response = embed(&emu, body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["model"], "embedding-3");
    assert_eq!(answer["object"], "list");
    let tokens = embedding_tokens("hello") + embedding_tokens("wide world");
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens})
    );
    for (i, text) in ["hello", "wide world"].iter().enumerate() {
        let item = &answer["data"][i];
        assert_eq!(
            (item["index"].as_u64(), &item["object"]),
            (Some(i as u64), &json!("embedding"))
        );
        let floats: Vec<f32> = serde_json::from_value(item["embedding"].clone()).expect("floats");
        let expected = embedding_vector(text, 256);
        assert!(floats
            .iter()
            .zip(&expected)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(floats.len(), 256);
    }
    let recorded = emu.handle.requests();
    assert_eq!(recorded[0].path, "/api/paas/v4/embeddings");
    assert_eq!(recorded[0].body["encoding_format"], "base64");
}

#[tokio::test]
async fn dimensions_default_and_fixed() {
    let emu = Emulator::start().await;
    for (body, len) in [
        (json!({"model": "embedding-3", "input": "x"}), 2048),
        (json!({"model": "embedding-2", "input": "x"}), 1024),
    ] {
        let answer: Value = embed(&emu, body).await.json().await.expect("json");
        assert_eq!(
            answer["data"][0]["embedding"].as_array().map(Vec::len),
            Some(len)
        );
    }
}

#[tokio::test]
async fn bad_requests_get_zhipu_errors() {
    let emu = Emulator::start().await;
    let many: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
    let cases = [
        (json!({"model": "embedding-3", "input": [[1, 2]]}), "1214"),
        (json!({"model": "embedding-3", "input": [1, 2]}), "1214"),
        (json!({"model": "embedding-3", "input": 5}), "1214"),
        (json!({"model": "embedding-3", "input": null}), "1214"),
        (json!({"model": "embedding-3"}), "1214"),
        (json!({"model": "embedding-3", "input": ""}), "1214"),
        (json!({"model": "embedding-3", "input": []}), "1214"),
        (json!({"model": "embedding-3", "input": ["a", ""]}), "1214"),
        (json!({"model": "embedding-3", "input": many}), "1214"),
        (
            json!({"model": "embedding-3", "input": "a", "dimensions": 768}),
            "1214",
        ),
        (
            json!({"model": "embedding-2", "input": "a", "dimensions": 1024}),
            "1214",
        ),
        (
            json!({"model": "text-embedding-3-small", "input": "a"}),
            "1211",
        ),
        (json!({"input": "a"}), "1213"),
    ];
    for (body, code) in cases {
        let response = embed(&emu, body.clone()).await;
        assert_eq!(error_code(response).await, (400, code.to_owned()), "{body}");
    }
    let sixty_four: Vec<String> = (0..64).map(|i| format!("t{i}")).collect();
    let ok = embed(&emu, json!({"model": "embedding-3", "input": sixty_four})).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn embeddings_need_a_key() {
    let emu = Emulator::start().await;
    let response = emu
        .client
        .post(format!("{}/embeddings", emu.base))
        .json(&json!({"model": "embedding-3", "input": "x"}))
        .send()
        .await
        .expect("send");
    assert_eq!(error_code(response).await, (401, "1001".to_owned()));
}
