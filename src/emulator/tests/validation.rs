//! Requests real Zhipu rejects, and the codes it rejects them with.

use serde_json::{json, Value};

use super::{ask, error_code, Emulator};

/// `ask("hi")` with `key` set to `value`.
fn with(key: &str, value: Value) -> Value {
    let mut body = ask("hi");
    body[key] = value;
    body
}

async fn assert_rejected(emu: &Emulator, body: Value, status: u16, code: &str) -> String {
    let response = emu.chat(&body).await;
    let actual_status = response.status().as_u16();
    let reply: Value = response.json().await.expect("json");
    assert_eq!(actual_status, status, "{body} -> {reply}");
    assert_eq!(reply["error"]["code"], code, "{body} -> {reply}");
    reply["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn openai_only_fields_are_1210() {
    let emu = Emulator::start().await;
    for field in [
        "n",
        "seed",
        "stream_options",
        "presence_penalty",
        "max_completion_tokens",
        "user",
        "logprobs",
    ] {
        let message = assert_rejected(&emu, with(field, json!(1)), 400, "1210").await;
        assert!(message.contains(field), "{message}");
    }
    let not_object = emu
        .client
        .post(format!("{}/chat/completions", emu.base))
        .header("Authorization", format!("Bearer {}", super::KEY))
        .body("[1,2]")
        .send()
        .await
        .expect("send");
    assert_eq!(error_code(not_object).await, (400, "1210".to_owned()));
}

#[tokio::test]
async fn sampling_ranges_follow_the_model() {
    let emu = Emulator::start().await;
    let message = assert_rejected(&emu, with("top_p", json!(1)), 400, "1214").await;
    assert!(message.contains("top_p参数非法"), "{message}");
    let mut old = with("temperature", json!(0));
    old["model"] = json!("glm-4");
    assert_rejected(&emu, old, 400, "1214").await;
    assert_rejected(&emu, with("temperature", json!(0.555)), 400, "1214").await;
    assert_eq!(emu.chat(&with("temperature", json!(0))).await.status(), 200);
    assert_eq!(emu.chat(&with("temperature", json!(1))).await.status(), 200);
    assert_rejected(&emu, with("max_tokens", json!(98_305)), 400, "1214").await;
    assert_eq!(
        emu.chat(&with("max_tokens", json!(98_304))).await.status(),
        200
    );
}

#[tokio::test]
async fn bad_parameter_values_are_1214() {
    let emu = Emulator::start().await;
    let cases = [
        with("stop", json!(["a", "b"])),
        with("stop", json!("a")),
        with("user_id", json!("abc")),
        with("tool_choice", json!("required")),
        with("response_format", json!({"type": "json_schema"})),
        with("stream", json!("yes")),
        with(
            "messages",
            json!([{"role": "system", "content": "only system"}]),
        ),
        with(
            "messages",
            json!([{"role": "user", "content": "hi", "name": "bob"}]),
        ),
        with("messages", json!([{"role": "developer", "content": "hi"}])),
        with(
            "tools",
            json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        ),
        with(
            "tools",
            json!([{"type": "function", "function": {
            "name": "f", "description": "d", "parameters": {}, "strict": true}}]),
        ),
        with(
            "messages",
            json!([{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "auto"}}]}]),
        ),
    ];
    for body in cases {
        assert_rejected(&emu, body, 400, "1214").await;
    }
    assert_eq!(emu.chat(&with("stop", json!(["a"]))).await.status(), 200);
}

#[tokio::test]
async fn data_url_images_are_rejected() {
    let emu = Emulator::start().await;
    let content = json!([{"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]);
    let mut body =
        json!({"model": "glm-4v-plus", "messages": [{"role": "user", "content": content}]});
    let message = assert_rejected(&emu, body.clone(), 400, "1214").await;
    assert_eq!(message, "图片输入格式/解析错误");
    body["messages"][0]["content"][1]["image_url"]["url"] = json!("iVBORw0KGgo=");
    assert_eq!(emu.chat(&body).await.status(), 200);
}

#[tokio::test]
async fn unknown_model_is_1211_and_missing_model_1213() {
    let emu = Emulator::start().await;
    assert_rejected(&emu, with("model", json!("gpt-4o")), 400, "1211").await;
    let mut body = ask("hi");
    body.as_object_mut().expect("object").remove("model");
    assert_rejected(&emu, body, 400, "1213").await;
}

#[tokio::test]
async fn reused_request_id_is_1231() {
    let emu = Emulator::start().await;
    let body = with("request_id", json!("req-123456"));
    let first: Value = emu.chat(&body).await.json().await.expect("json");
    assert_eq!(first["id"], "req-123456");
    assert_eq!(first["request_id"], "req-123456");
    assert_rejected(&emu, body, 400, "1231").await;
}

#[tokio::test]
async fn unknown_paths_get_a_spring_404() {
    let emu = Emulator::start().await;
    for response in [
        emu.client
            .post(format!("{}/completions", emu.base))
            .send()
            .await
            .expect("send"),
        emu.client
            .get(format!("{}/chat/completions", emu.base))
            .send()
            .await
            .expect("send"),
    ] {
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["status"], 404);
        assert_eq!(body["error"], "Not Found");
        assert!(body["timestamp"].is_string());
        assert!(body["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/api/paas/v4/")));
    }
}
