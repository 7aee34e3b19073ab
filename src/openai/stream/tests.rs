use super::*;

/// Splits an SSE fixture into event `data` payloads, as the upstream reader will.
fn events(sse: &str) -> Vec<&str> {
    sse.split("\n\n")
        .filter_map(|block| block.strip_prefix("data:"))
        .map(str::trim_start)
        .collect()
}

/// Runs a whole fixture, then `finish(None)` as the reader does when the body ends.
fn run(sse: &str, include_usage: bool) -> (ChunkRewriter, Vec<String>) {
    let mut rewriter = ChunkRewriter::new(include_usage);
    let mut frames: Vec<Bytes> = Vec::new();
    for data in events(sse) {
        frames.extend(rewriter.push(data));
    }
    frames.extend(rewriter.finish(None));
    let frames = frames
        .iter()
        .map(|f| String::from_utf8(f.to_vec()).expect("utf-8"))
        .collect();
    (rewriter, frames)
}

/// Every frame is exactly `data: <payload>\n\n`; returns the parsed JSON frames and whether
/// the last frame was the single `[DONE]`.
fn parse(frames: &[String]) -> (Vec<Value>, bool) {
    let mut chunks = Vec::new();
    let mut done = 0;
    for (at, frame) in frames.iter().enumerate() {
        let payload = frame
            .strip_prefix("data: ")
            .and_then(|f| f.strip_suffix("\n\n"))
            .expect("framed as data: …\\n\\n");
        assert!(!payload.contains('\n'), "one line per event: {frame:?}");
        if payload == "[DONE]" {
            done += 1;
            assert_eq!(at, frames.len() - 1, "[DONE] is last");
        } else {
            chunks.push(serde_json::from_str(payload).expect("JSON event"));
        }
    }
    assert!(done <= 1, "at most one [DONE]");
    (chunks, done == 1)
}

fn finish_reasons(chunks: &[Value]) -> Vec<Value> {
    chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
        .map(|choice| choice["finish_reason"].clone())
        .collect()
}

#[test]
fn every_chunk_has_the_object_and_null_finish_until_the_last() {
    let (rewriter, frames) = run(include_str!("../fixtures/simple.sse"), false);
    let (chunks, done) = parse(&frames);
    assert!(done);
    assert_eq!(chunks.len(), 7);
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], "20250926190540c29952ed24ae4570");
        let choice = &chunk["choices"][0];
        assert!(
            choice.get("finish_reason").is_some(),
            "finish_reason key present"
        );
        assert_eq!(choice["delta"]["role"], "assistant");
    }
    let reasons = finish_reasons(&chunks);
    assert!(reasons[..6].iter().all(Value::is_null));
    assert_eq!(reasons[6], "stop");
    assert!(rewriter.is_finished());
    assert_eq!(rewriter.usage().expect("usage")["total_tokens"], 56);
    assert_eq!(rewriter.error().map(|e| e.status().as_u16()), None);
}

#[test]
fn without_include_usage_no_chunk_carries_usage() {
    let (_, frames) = run(include_str!("../fixtures/simple.sse"), false);
    let (chunks, _) = parse(&frames);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert!(frames.iter().all(|f| !f.contains("usage")));
}

#[test]
fn with_include_usage_one_usage_chunk_precedes_the_single_done() {
    let (_, frames) = run(include_str!("../fixtures/simple.sse"), true);
    let (chunks, done) = parse(&frames);
    assert!(done);
    let (last, rest) = chunks.split_last().expect("chunks");
    assert_eq!(last["choices"], serde_json::json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 16);
    assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(last["object"], "chat.completion.chunk");
    assert_eq!(last["id"], "20250926190540c29952ed24ae4570");
    assert_eq!(last["model"], "glm-4.5");
    assert_eq!(last["created"], 1758884740);
    for chunk in rest {
        assert!(chunk["usage"].is_null() && chunk.get("usage").is_some());
        assert!(!chunk["choices"].as_array().expect("choices").is_empty());
    }
}

#[test]
fn the_repeated_tool_calls_finish_is_sent_once() {
    let (rewriter, frames) = run(include_str!("../fixtures/tool_calls.sse"), true);
    let (chunks, done) = parse(&frames);
    assert!(done);
    let reasons = finish_reasons(&chunks);
    let finished: Vec<&Value> = reasons.iter().filter(|r| !r.is_null()).collect();
    assert_eq!(finished, ["tool_calls"]);
    let tool_chunk = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"] == "tool_calls")
        .expect("tool chunk");
    let call = &tool_chunk["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(call["index"], 0);
    assert_eq!(call["id"], "call_51a97502d6444997b56fd204");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "weather");
    assert_eq!(
        call["function"]["arguments"],
        "{\"location\": \"Florence,Italy\"}"
    );
    // The repeat carried only usage, which moved to the usage chunk.
    assert_eq!(
        chunks.last().expect("usage chunk")["usage"]["total_tokens"],
        249
    );
    assert_eq!(rewriter.usage().expect("usage")["completion_tokens"], 70);
}

#[test]
fn streamed_tool_arguments_name_the_type_once() {
    let (rewriter, frames) = run(include_str!("../fixtures/tool_stream.sse"), false);
    let (chunks, done) = parse(&frames);
    assert!(done);
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["type"], "function");
    assert_eq!(first["id"], "call_7f");
    let piece = &chunks[1]["choices"][0]["delta"]["tool_calls"][0];
    assert!(piece.get("type").is_none());
    assert_eq!(piece["index"], 0);
    assert_eq!(
        finish_reasons(&chunks).last(),
        Some(&Value::from("tool_calls"))
    );
    assert!(rewriter.usage().is_some());
}

#[test]
fn sensitive_becomes_content_filter_with_assistant_role() {
    let (_, frames) = run(include_str!("../fixtures/sensitive.sse"), false);
    let (chunks, done) = parse(&frames);
    assert!(done);
    let last = &chunks.last().expect("chunk")["choices"][0];
    assert_eq!(last["finish_reason"], "content_filter");
    assert_eq!(last["delta"]["role"], "assistant");
}

#[test]
fn context_window_exceeded_becomes_length() {
    let (_, frames) = run(include_str!("../fixtures/context_exceeded.sse"), false);
    let (chunks, _) = parse(&frames);
    assert_eq!(finish_reasons(&chunks).last(), Some(&Value::from("length")));
}

#[test]
fn network_error_becomes_an_error_event_without_done() {
    let (rewriter, frames) = run(include_str!("../fixtures/network_error.sse"), true);
    let (chunks, done) = parse(&frames);
    assert!(!done);
    let error = &chunks.last().expect("error event")["error"];
    assert_eq!(error["code"], "upstream_network_error");
    assert_eq!(error["type"], "server_error");
    assert!(rewriter.is_finished());
    assert_eq!(rewriter.error().map(|e| e.status().as_u16()), Some(502));
}

#[test]
fn a_mid_stream_error_is_an_error_event_and_the_end() {
    let mut rewriter = ChunkRewriter::new(false);
    let mut frames = Vec::new();
    for data in events(include_str!("../fixtures/mid_error.sse")) {
        frames.extend(rewriter.push(data));
    }
    assert!(rewriter.is_finished());
    assert!(rewriter.push("[DONE]").is_empty());
    assert!(rewriter.finish(None).is_empty());
    let frames: Vec<String> = frames
        .iter()
        .map(|f| String::from_utf8(f.to_vec()).expect("utf-8"))
        .collect();
    let (chunks, done) = parse(&frames);
    assert!(!done);
    assert_eq!(chunks.len(), 3);
    let error = &chunks[2]["error"];
    assert_eq!(error["code"], "content_filter");
    assert!(error["message"]
        .as_str()
        .expect("message")
        .contains("zhipu code 1301"));
}

#[test]
fn invalid_json_is_a_502_error_event() {
    let mut rewriter = ChunkRewriter::new(false);
    let frames = rewriter.push("{not json");
    assert_eq!(frames.len(), 1);
    let text = String::from_utf8(frames[0].to_vec()).expect("utf-8");
    assert!(text.starts_with("data: {\"error\":"));
    assert!(text.contains("upstream_invalid_response"));
    assert!(rewriter.is_finished());
}

#[test]
fn an_early_close_is_an_error_event() {
    let mut rewriter = ChunkRewriter::new(true);
    let simple = include_str!("../fixtures/simple.sse");
    for data in events(simple).into_iter().take(3) {
        assert_eq!(rewriter.push(data).len(), 1);
    }
    let frames = rewriter.finish(None);
    assert_eq!(frames.len(), 1);
    let text = String::from_utf8(frames[0].to_vec()).expect("utf-8");
    assert!(text.contains("upstream_stream_incomplete"));
    assert!(rewriter.is_finished());
    assert!(rewriter.finish(None).is_empty());
}

#[test]
fn a_read_failure_is_reported_as_given() {
    let mut rewriter = ChunkRewriter::new(false);
    let failure = ApiError::upstream_timeout("upstream went quiet");
    let frames = rewriter.finish(Some(&failure));
    let text = String::from_utf8(frames[0].to_vec()).expect("utf-8");
    assert!(text.contains("upstream_timeout"), "{text}");
}

#[test]
fn a_finished_answer_without_done_still_ends_cleanly() {
    let simple = include_str!("../fixtures/simple.sse");
    let mut rewriter = ChunkRewriter::new(true);
    let all = events(simple);
    for data in &all[..all.len() - 1] {
        rewriter.push(data);
    }
    let failure = ApiError::new(ErrorCode::UpstreamError, "connection reset");
    let frames = rewriter.finish(Some(&failure));
    let frames: Vec<String> = frames
        .iter()
        .map(|f| String::from_utf8(f.to_vec()).expect("utf-8"))
        .collect();
    let (chunks, done) = parse(&frames);
    assert!(done);
    assert_eq!(chunks.len(), 2, "the held finish chunk, then usage");
    assert_eq!(chunks[0]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[1]["usage"]["total_tokens"], 56);
}

#[test]
fn blank_events_are_ignored() {
    let mut rewriter = ChunkRewriter::new(false);
    assert!(rewriter.push("").is_empty());
    assert!(rewriter.push("   ").is_empty());
    assert!(!rewriter.is_finished());
}

#[test]
fn parallel_tool_calls_finish_once_on_the_last_choice_chunk() {
    let (_, frames) = run(include_str!("../fixtures/parallel_tool_calls.sse"), true);
    let (chunks, done) = parse(&frames);
    assert!(done);
    let with_choice: Vec<&Value> = chunks
        .iter()
        .filter(|c| !c["choices"].as_array().expect("choices").is_empty())
        .collect();
    let reasons = finish_reasons(&chunks);
    assert_eq!(
        reasons.iter().filter(|r| !r.is_null()).count(),
        1,
        "{reasons:?}"
    );
    let last = with_choice.last().expect("a choice chunk");
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
    let ids: Vec<&Value> = with_choice
        .iter()
        .flat_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .map(|call| &call["id"])
        .collect();
    assert_eq!(ids, ["call_a1", "call_b2", "call_c3"]);
    assert_eq!(chunks.last().expect("usage")["usage"]["total_tokens"], 301);
}

#[test]
fn the_finish_chunk_is_released_by_done_or_by_an_error() {
    let mut rewriter = ChunkRewriter::new(false);
    let finishing = json!({"id": "1", "choices": [{"index": 0, "finish_reason": "stop",
        "delta": {"role": "assistant", "content": "end"}}]});
    assert!(
        rewriter.push(&finishing.to_string()).is_empty(),
        "held back"
    );
    let frames = rewriter.push("[DONE]");
    assert_eq!(frames.len(), 2);
    assert!(String::from_utf8_lossy(&frames[0]).contains("\"finish_reason\":\"stop\""));

    let mut rewriter = ChunkRewriter::new(false);
    rewriter.push(&finishing.to_string());
    let frames = rewriter.push(r#"{"error":{"code":"1301","message":"x"}}"#);
    assert_eq!(frames.len(), 2, "the held chunk, then the error");
}
