//! The Response API under `/api/v1/responses`: shapes, storage, streams, faults and auth.

use serde_json::{json, Value};

use super::{jwt, now_ms, Emulator, KEY};

fn root(emu: &Emulator) -> String {
    emu.base.replace("/api/paas/v4", "/api/v1/responses")
}

async fn call(
    emu: &Emulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = emu
        .client
        .request(method, format!("{}{path}", root(emu)))
        .header("Authorization", format!("Bearer {KEY}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("send")
}

async fn create(emu: &Emulator, body: Value) -> (u16, Value) {
    let response = call(emu, reqwest::Method::POST, "", Some(body)).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// `(event name, data)` of each `event:` frame, and whether a `data: [DONE]` ended the stream.
fn frames(text: &str) -> (Vec<(String, Value)>, bool) {
    let mut out = Vec::new();
    let mut done = false;
    for block in text.split("\n\n").filter(|b| !b.is_empty()) {
        if block == "data: [DONE]" {
            done = true;
            continue;
        }
        let (event, data) = block.split_once('\n').expect("event and data lines");
        let event = event
            .strip_prefix("event: ")
            .expect("event line")
            .to_owned();
        let data = serde_json::from_str(data.strip_prefix("data: ").expect("data line"));
        out.push((event, data.expect("json data")));
    }
    (out, done)
}

#[tokio::test]
async fn a_plain_response_has_text_and_usage_and_is_not_stored_by_default() {
    let emu = Emulator::start().await;
    let (status, body) = create(&emu, json!({"model": "glm-4.7", "input": "hi there"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    let text = body["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("hi there"), "{text}");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(body.get("store").is_none(), "live Zhipu leaves store out");
    let id = body["id"].as_str().unwrap();
    let response = call(&emu, reqwest::Method::GET, &format!("/{id}"), None).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn stored_responses_are_retrieved_listed_chained_and_deleted() {
    let emu = Emulator::start().await;
    let input = json!([
        {"role": "system", "content": "be brief"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": {"url": "https://x/y.png"}}
        ]}
    ]);
    let (_, first) = create(
        &emu,
        json!({"model": "glm-4.7", "input": input, "store": true}),
    )
    .await;
    let id = first["id"].as_str().unwrap();
    let got: Value = call(&emu, reqwest::Method::GET, &format!("/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], first["id"]);
    let items: Value = call(
        &emu,
        reqwest::Method::GET,
        &format!("/{id}/input_items?order=asc"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(items["object"], "list");
    assert_eq!(items["data"][0]["role"], "system");
    let parts = items["data"][1]["content"].as_array().unwrap();
    assert_eq!(
        parts.len(),
        1,
        "the image given as an object is dropped: {parts:?}"
    );
    let desc: Value = call(
        &emu,
        reqwest::Method::GET,
        &format!("/{id}/input_items"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(desc["data"][0]["role"], "user", "desc is the default order");
    let (status, next) = create(
        &emu,
        json!({"model": "glm-4.7", "input": "#echo", "previous_response_id": id}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(next["previous_response_id"], first["id"]);
    let deleted: Value = call(&emu, reqwest::Method::DELETE, &format!("/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        deleted,
        json!({"id": id, "object": "response", "deleted": true})
    );
    let (status, body) = create(
        &emu,
        json!({"model": "glm-4.7", "input": "again", "previous_response_id": id}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn a_named_tool_is_called_and_its_output_answered() {
    let emu = Emulator::start().await;
    let tools = json!([{"type": "function", "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let (_, body) = create(
        &emu,
        json!({"model": "glm-4.7", "input": "call get_weather please", "tools": tools}),
    )
    .await;
    let call_item = &body["output"][0];
    assert_eq!(call_item["type"], "function_call");
    assert_eq!(call_item["name"], "get_weather");
    let call_id = call_item["call_id"].as_str().unwrap();
    assert!(call_id.starts_with("call_"));
    let input = json!([
        {"role": "user", "content": "call get_weather please"},
        call_item,
        {"type": "function_call_output", "call_id": call_id, "output": "sunny"}
    ]);
    let (_, body) = create(
        &emu,
        json!({"model": "glm-4.7", "input": input, "tools": tools}),
    )
    .await;
    let text = body["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("sunny"), "{text}");
}

#[tokio::test]
async fn streams_number_their_events_and_end_with_the_whole_response_and_done() {
    let emu = Emulator::start().await;
    let body = json!({"model": "glm-4.7", "input": "#chunks 3", "stream": true});
    let text = call(&emu, reqwest::Method::POST, "", Some(body))
        .await
        .text()
        .await
        .unwrap();
    let (events, done) = frames(&text);
    assert!(done);
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i as u64);
        assert_eq!(&data["type"], name);
    }
    assert_eq!(events[0].0, "response.created");
    let deltas: String = events
        .iter()
        .filter(|(name, _)| name == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "response.completed");
    assert_eq!(
        data["response"]["output"][0]["content"][0]["text"],
        deltas.as_str()
    );
    assert_eq!(deltas, "w1 w2 w3");
    assert!(data["response"]["usage"]["input_tokens"].as_u64().is_some());

    let body = json!({"model": "glm-4.7", "input": "#midstream-fail #no-done", "stream": true});
    let text = call(&emu, reqwest::Method::POST, "", Some(body))
        .await
        .text()
        .await
        .unwrap();
    let (events, done) = frames(&text);
    assert!(!done);
    let names: Vec<&str> = events
        .iter()
        .rev()
        .take(2)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["error", "response.failed"]);
}

#[tokio::test]
async fn errors_have_string_codes_and_a_bad_key_gets_a_200() {
    let emu = Emulator::start().await;
    let (status, body) = create(
        &emu,
        json!({"model": "glm-4.7", "input": "x #error overloaded"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("overloaded"))
    );
    let (status, body) = create(&emu, json!({"model": "gpt-4o", "input": "x"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("model_not_found"))
    );
    let effort = json!({"model": "glm-5.3", "input": "x", "reasoning": {"effort": "medium"}});
    assert_eq!(create(&emu, effort).await.0, 400);
    let too_long = json!({"model": "glm-4.6v", "input": "x", "max_output_tokens": 40000});
    assert_eq!(create(&emu, too_long).await.0, 400);
    let choice = json!({"model": "glm-4.7", "input": "x", "tool_choice": "required"});
    assert_eq!(create(&emu, choice).await.0, 400);
    let unknown = json!({"model": "glm-4.7", "input": "x", "service_tier": "auto"});
    assert_eq!(create(&emu, unknown).await.0, 400);

    let response = emu
        .client
        .post(root(&emu))
        .header("Authorization", "Bearer nope.nope")
        .json(&json!({"model": "glm-4.7", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"code": 1000, "msg": "身份验证失败。", "success": false})
    );

    let (id, secret) = KEY.split_once('.').unwrap();
    let token = jwt(id, secret, now_ms() + 60_000, now_ms());
    let response = emu
        .client
        .post(root(&emu))
        .header("Authorization", format!("Bearer {token}"))
        .json(&json!({"model": "glm-4.7", "input": "x"}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "completed", "a signed token works too");
}
