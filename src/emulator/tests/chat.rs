//! Answers: the exact non-stream and stream shapes, tool calls, and each directive.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{ask, error_code, sse_events, Emulator};

fn streaming(text: &str) -> Value {
    let mut body = ask(text);
    body["stream"] = json!(true);
    body
}

fn with_tool(mut body: Value) -> Value {
    body["tools"] = json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"}}}}}]);
    body
}

async fn stream_events(emu: &Emulator, body: &Value) -> Vec<Value> {
    let response = emu.chat(body).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("ascii");
    assert_eq!(content_type, "text/event-stream;charset=UTF-8");
    let events = sse_events(&response.text().await.expect("body"));
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("json event"))
        .collect()
}

#[tokio::test]
async fn non_stream_completion_has_zhipus_shape() {
    let emu = Emulator::start().await;
    let body: Value = emu
        .chat(&ask("hello there"))
        .await
        .json()
        .await
        .expect("json");
    assert!(body.get("object").is_none());
    assert_eq!(body["id"], body["request_id"]);
    assert!(body["created"].is_i64());
    assert_eq!(body["model"], "glm-4.5");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "stop");
    let expected = "Hello from the GLM emulator. You said: hello there";
    assert_eq!(
        choice["message"],
        json!({"role": "assistant", "content": expected})
    );
    let usage = json!({"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16,
        "prompt_tokens_details": {"cached_tokens": 0}});
    assert_eq!(body["usage"], usage);
}

#[tokio::test]
async fn stream_has_zhipus_chunks_and_usage_in_the_finish_chunk() {
    let emu = Emulator::start().await;
    let events = stream_events(&emu, &streaming("#chunks 3")).await;
    assert_eq!(events.len(), 4);
    for (i, event) in events[..3].iter().enumerate() {
        let keys: Vec<&String> = event.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["choices", "created", "id", "model"]);
        let choice = &event["choices"][0];
        assert!(choice.get("finish_reason").is_none());
        let piece = if i < 2 {
            format!("w{} ", i + 1)
        } else {
            "w3".to_owned()
        };
        assert_eq!(
            choice["delta"],
            json!({"role": "assistant", "content": piece})
        );
    }
    let last = &events[3];
    assert!(last.get("object").is_none());
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        last["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(last["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn streamed_tool_call_finishes_twice() {
    let emu = Emulator::start().await;
    let events = stream_events(&emu, &with_tool(streaming("weather? #tool"))).await;
    assert_eq!(events.len(), 2);
    let first = &events[0]["choices"][0];
    assert_eq!(first["finish_reason"], "tool_calls");
    let call = &first["delta"]["tool_calls"][0];
    let id = call["id"].as_str().expect("id");
    assert!(id.starts_with("call_") && id.len() == 29, "{id}");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().expect("string"))
        .expect("json arguments");
    assert_eq!(args, json!({"city": "emulated", "days": 1, "metric": true}));
    let second = &events[1];
    assert_eq!(second["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        second["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert!(second["usage"]["total_tokens"].is_u64());
}

#[tokio::test]
async fn tool_call_and_tool_result_without_stream() {
    let emu = Emulator::start().await;
    let body: Value = emu
        .chat(&with_tool(ask("#tool")))
        .await
        .json()
        .await
        .expect("json");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = choice["message"]["tool_calls"][0].clone();
    let mut follow_up = with_tool(ask("#tool"));
    follow_up["messages"] = json!([{"role": "user", "content": "#tool"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "content": "sunny", "tool_call_id": "x"}]);
    let body: Value = emu.chat(&follow_up).await.json().await.expect("json");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The tool said: sunny"
    );
}

#[tokio::test]
async fn echo_returns_the_body_as_received() {
    let emu = Emulator::start().await;
    let mut request = streaming("#echo");
    request["temperature"] = json!(0.3);
    let events = stream_events(&emu, &request).await;
    let text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(events[0]["choices"][0]["delta"]["content"]
        .as_str()
        .is_some_and(|p| p.chars().count() == 16));
    assert_eq!(serde_json::from_str::<Value>(&text).expect("json"), request);
}

#[tokio::test]
async fn slow_spaces_the_chunks() {
    let emu = Emulator::start().await;
    let started = Instant::now();
    let mut response = emu.chat(&streaming("#chunks 5 #slow 150")).await;
    let mut first = None;
    while let Some(bytes) = response.chunk().await.expect("chunk") {
        if first.is_none() && !bytes.is_empty() {
            first = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    let first = first.expect("some data");
    assert!(total >= Duration::from_millis(600), "{total:?}");
    assert!(
        total - first >= Duration::from_millis(450),
        "first {first:?}, total {total:?}"
    );
}

#[tokio::test]
async fn error_directives_pick_status_and_body() {
    let emu = Emulator::start().await;
    assert_eq!(
        error_code(emu.chat(&streaming("#error 1113")).await).await,
        (429, "1113".to_owned())
    );
    assert_eq!(
        error_code(emu.chat(&ask("#error 1234")).await).await,
        (500, "1234".to_owned())
    );
    assert_eq!(
        error_code(emu.chat(&ask("#error200 1261")).await).await,
        (200, "1261".to_owned())
    );
    let filtered: Value = emu
        .chat(&ask("#error 1301"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        filtered["contentFilter"],
        json!([{"level": 1, "role": "user"}])
    );
    let html = emu.chat(&ask("#http html")).await;
    assert_eq!(html.status(), 502);
    assert!(html.headers()["content-type"]
        .to_str()
        .is_ok_and(|t| t.starts_with("text/html")));
    let empty = emu.chat(&ask("#http empty")).await;
    assert_eq!(empty.status(), 503);
    assert!(empty.bytes().await.expect("body").is_empty());
    let spring: Value = emu
        .chat(&ask("#http spring"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(spring["status"], 404);
}

#[tokio::test]
async fn sensitive_finish_carries_a_content_filter() {
    let emu = Emulator::start().await;
    let events = stream_events(&emu, &streaming("#finish sensitive")).await;
    let last = events.last().expect("final chunk");
    assert_eq!(last["choices"][0]["finish_reason"], "sensitive");
    assert_eq!(
        last["content_filter"],
        json!([{"role": "assistant", "level": 1}])
    );
    let body: Value = emu
        .chat(&ask("#finish length"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn midstream_error_and_cut_end_without_done() {
    let emu = Emulator::start().await;
    let text = emu
        .chat(&streaming("#midstream-error"))
        .await
        .text()
        .await
        .expect("body");
    let events = sse_events(&text);
    assert_eq!(events.len(), 3);
    let error: Value = serde_json::from_str(&events[2]).expect("json");
    assert_eq!(error["error"]["code"], "1234");
    let cut = emu.chat(&streaming("#cut")).await.text().await;
    assert!(cut.is_err(), "a cut stream must not end cleanly");
}
