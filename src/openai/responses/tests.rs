use serde_json::{json, Value};

use super::*;
use crate::upstream::{in_band_error, map_responses_error};

fn plan(body: Value, model: &str) -> ResponsesPlan {
    to_zhipu(body, model, true).unwrap()
}

fn refused(body: Value) -> ApiError {
    to_zhipu(body, "glm-4.7", true).unwrap_err()
}

#[test]
fn store_defaults_on_and_sampling_and_length_are_clamped() {
    let p = plan(
        json!({"model": "gpt-4o", "input": "hi", "temperature": 1.5, "top_p": 0.0,
            "max_output_tokens": 1_000_000, "service_tier": "auto", "background": false}),
        "glm-4.6v",
    );
    assert!(p.store && !p.stream);
    assert_eq!(p.body["model"], "glm-4.6v");
    assert_eq!(p.body["store"], true);
    assert_eq!(p.body["temperature"], 1.0);
    assert_eq!(p.body["top_p"], 0.01);
    assert_eq!(p.body["max_output_tokens"], 32_768);
    assert!(!p.body.contains_key("service_tier") && !p.body.contains_key("background"));
    let p = to_zhipu(
        json!({"model": "m", "input": "hi", "store": false}),
        "glm-4.7",
        true,
    );
    assert_eq!(p.unwrap().body["store"], false);
    assert!(
        !to_zhipu(json!({"model": "m", "input": "x"}), "glm-4.7", false)
            .unwrap()
            .store
    );
    assert_eq!(
        refused(json!({"input": "x", "temperature": 3}))
            .param
            .as_deref(),
        Some("temperature")
    );
}

#[test]
fn effort_is_mapped_for_the_glm_5_3_family_only() {
    let effort = |effort: &str, model: &str| {
        let body = json!({"input": "x", "reasoning": {"effort": effort, "summary": "auto"}});
        let p = plan(body, model);
        assert!(p.body["reasoning"].get("summary").is_none());
        p.body["reasoning"]["effort"].clone()
    };
    assert_eq!(effort("minimal", "glm-5.3"), "low");
    assert_eq!(effort("medium", "glm-5.3-flash"), "high");
    assert_eq!(effort("high", "glm-5.3"), "high");
    assert_eq!(effort("medium", "glm-5.1"), "medium");
}

#[test]
fn image_url_objects_are_flattened() {
    let input = json!([{"role": "user", "content": [
        {"type": "input_text", "text": "what is it"},
        {"type": "input_image", "image_url": {"url": "https://x/y.png"}, "detail": "auto"}
    ]}]);
    let p = plan(json!({"input": input}), "glm-4.6v");
    assert_eq!(
        p.body["input"][0]["content"][1]["image_url"],
        "https://x/y.png"
    );
}

#[test]
fn built_in_tools_zhipu_lacks_are_refused_by_name() {
    for kind in [
        "file_search",
        "computer_use_preview",
        "code_interpreter",
        "image_generation",
        "mcp",
    ] {
        let error = refused(json!({"input": "x", "tools": [{"type": kind}]}));
        assert_eq!(error.param.as_deref(), Some("tools"));
        assert!(error.message.contains(kind), "{}", error.message);
    }
    let p = plan(
        json!({"input": "x", "tools": [{"type": "web_search_preview"}]}),
        "glm-4.7",
    );
    assert_eq!(p.body["tools"][0]["type"], "web_search");
}

#[test]
fn missing_fields_are_filled_from_the_request() {
    let p = plan(
        json!({"input": "x", "tools": [{"type": "function", "name": "f"}], "metadata": {"a": "b"}}),
        "glm-4.7",
    );
    let mut response = json!({"id": "resp_1", "status": "completed", "model": "glm-4.7",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "hi"}]}]});
    complete_response(&mut response, &p.echo);
    assert_eq!(response["object"], "response");
    assert_eq!(response["store"], true);
    assert_eq!(response["tools"][0]["name"], "f");
    assert_eq!(response["metadata"], json!({"a": "b"}));
    assert_eq!(response["truncation"], "disabled");
    assert_eq!(response["parallel_tool_calls"], true);
    assert!(response["completed_at"].as_i64().is_some());
    assert!(response["error"].is_null() && response["incomplete_details"].is_null());
    let item = &response["output"][0];
    assert!(item["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        (&item["status"], &item["role"]),
        (&json!("completed"), &json!("assistant"))
    );
    assert_eq!(item["content"][0]["annotations"], json!([]));
}

#[test]
fn errors_map_by_string_code_and_a_200_auth_failure_is_a_502() {
    let auth =
        in_band_error(&json!({"code": 1000, "msg": "身份验证失败。", "success": false})).unwrap();
    assert_eq!(
        (auth.status().as_u16(), Some(auth.code.as_str())),
        (502, Some("upstream_auth_failed"))
    );
    assert!(in_band_error(&json!({"id": "resp_1", "object": "response", "error": null})).is_none());
    let map = |status: u16, code: &str| {
        let body = json!({"error": {"code": code, "message": "m"}}).to_string();
        let error = map_responses_error(status, body.as_bytes());
        (error.status().as_u16(), error.code.as_str().to_owned())
    };
    assert_eq!(map(400, "model_not_found"), (404, "model_not_found".into()));
    assert_eq!(map(429, "overloaded"), (503, "upstream_overloaded".into()));
    assert_eq!(
        map(429, "insufficient_quota"),
        (429, "insufficient_quota".into())
    );
    assert_eq!(
        map(400, "context_length_exceeded"),
        (400, "context_length_exceeded".into())
    );
    assert_eq!(
        map(401, "invalid_api_key"),
        (502, "upstream_auth_failed".into())
    );
    assert_eq!(
        map(404, "invalid_request"),
        (404, "response_not_found".into())
    );
    let spring = json!({"status": 404, "error": "Not Found", "path": "/x"}).to_string();
    assert_eq!(
        map_responses_error(404, spring.as_bytes())
            .status()
            .as_u16(),
        502
    );
}

fn frames_of(stream: &mut ResponsesStream, events: &[Value]) -> Vec<String> {
    events
        .iter()
        .flat_map(|e| stream.push_event(crate::openai::stream::UpstreamEvent::Chunk(e.clone())))
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .collect()
}

#[test]
fn a_stream_is_framed_as_openai_and_ends_at_the_terminal_event() {
    let announced = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = announced.clone();
    let on_created: stream::OnCreated =
        Box::new(move |id| seen.lock().unwrap().push(id.to_owned()));
    let mut stream = ResponsesStream::new(Echo::stored(), Some(on_created));
    let frames = frames_of(
        &mut stream,
        &[
            json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_9", "status": "in_progress"}}),
            json!({"type": "response.output_text.delta", "sequence_number": 1, "delta": "hi"}),
            json!({"type": "response.completed", "sequence_number": 2, "response": {"id": "resp_9", "status": "completed"}}),
        ],
    );
    assert_eq!(announced.lock().unwrap().as_slice(), ["resp_9"]);
    assert!(frames[0].starts_with("event: response.created\ndata: {"));
    assert!(frames[0].contains("\"store\":true") && frames[0].ends_with("}\n\n"));
    assert!(frames[2].starts_with("event: response.completed\n"));
    assert!(stream.is_finished() && stream.error_code().is_none());
    assert!(stream
        .push_event(crate::openai::stream::UpstreamEvent::Done)
        .is_empty());

    let mut stream = ResponsesStream::new(Echo::stored(), None);
    let frames = frames_of(
        &mut stream,
        &[
            json!({"type": "response.output_text.delta", "sequence_number": 4, "delta": "a"}),
            json!({"type": "response.failed", "sequence_number": 5,
            "response": {"id": "r", "status": "failed", "error": {"code": "server_error", "message": "x"}}}),
            json!({"type": "error", "sequence_number": 6, "code": "server_error", "message": "x"}),
        ],
    );
    assert_eq!(frames.len(), 2, "nothing after the terminal event");
    assert_eq!(stream.error_code().as_deref(), Some("server_error"));

    let mut stream = ResponsesStream::new(Echo::stored(), None);
    frames_of(
        &mut stream,
        &[json!({"type": "response.output_text.delta", "sequence_number": 1, "delta": "a"})],
    );
    let end = stream.finish(None);
    let text = String::from_utf8(end[0].to_vec()).unwrap();
    assert!(text.starts_with("event: error\n") && text.contains("\"sequence_number\":2"));
    assert_eq!(
        stream.error_code().as_deref(),
        Some("upstream_stream_incomplete")
    );
}

#[test]
fn items_without_ids_keep_one_id_through_the_stream() {
    let mut stream = ResponsesStream::new(Echo::stored(), None);
    let frames = frames_of(
        &mut stream,
        &[
            json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "message", "content": []}}),
            json!({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "a"}),
            json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "message", "content": []}}),
            json!({"type": "response.completed", "response": {"status": "completed", "output": [{"type": "message", "content": []}]}}),
        ],
    );
    let data: Vec<Value> = frames
        .iter()
        .map(|f| serde_json::from_str(f.split_once("data: ").unwrap().1.trim()).unwrap())
        .collect();
    let id = data[0]["item"]["id"].clone();
    assert!(id.as_str().unwrap().starts_with("msg_"));
    assert_eq!(data[1]["item_id"], id);
    assert_eq!(data[2]["item"]["id"], id);
    assert_eq!(data[3]["response"]["output"][0]["id"], id);
    let sequence: Vec<u64> = data
        .iter()
        .map(|d| d["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(sequence, [0, 1, 2, 3]);
}
