//! Property tests over what strangers send: request bodies (random bytes, random JSON, and
//! chat requests with random values in every field) through `routes::json::parse` and
//! `openai::to_glm`, and upstream SSE (random bytes and chunkings) through `sse::SseParser`
//! and the chat `ChunkRewriter`. Nothing may panic, and every error must be OpenAI-shaped.
//! A fixed budget of 256 cases per property keeps CI's time known.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::collections::VecDeque;

use glm_gateway::error::ApiError;
use glm_gateway::openai::{to_glm, ChatCompletionRequest, ChunkRewriter};
use glm_gateway::routes::json::parse;
use glm_gateway::sse::{SseEvent, SseParser};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn assert_shaped(error: &ApiError) {
    let body = error.body();
    let inner = &body["error"];
    for field in ["message", "type", "param", "code"] {
        assert!(inner.get(field).is_some(), "error lacks `{field}`: {body}");
    }
    assert!(inner["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(inner["type"].as_str().is_some_and(|t| !t.is_empty()));
}

/// Parses and translates; checks the shape of whichever error comes.
fn check_body(bytes: &[u8]) {
    match parse::<ChatCompletionRequest>(bytes) {
        Ok(request) => {
            if let Err(error) = to_glm(request, "glm-4.7", "fuzz-request") {
                assert_shaped(&error);
            }
        }
        Err(error) => assert_shaped(&error),
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z_]{1,12}",
        any::<String>(),
        Just("user".to_owned()),
        Just("assistant".to_owned()),
        Just("function".to_owned()),
        Just("image_url".to_owned()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-2.0f64..3.0).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Fields a chat request may carry, each given a random value.
const FIELDS: &[&str] = &[
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "n",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "response_format",
    "user",
    "seed",
    "logprobs",
    "parallel_tool_calls",
    "thinking",
    "extra_body",
];

fn chat_request() -> impl Strategy<Value = Value> {
    let message = (text(), json_value(), prop::option::of(json_value())).prop_map(
        |(role, content, extra)| {
            let mut message = json!({"role": role, "content": content});
            if let Some(extra) = extra {
                message["tool_calls"] = extra;
            }
            message
        },
    );
    (
        text(),
        prop::collection::vec(message, 0..4),
        prop::collection::vec((prop::sample::select(FIELDS), json_value()), 0..5),
    )
        .prop_map(|(model, messages, fields)| {
            let mut request = json!({"model": model, "messages": messages});
            for (field, value) in fields {
                request[field] = value;
            }
            request
        })
}

/// Cuts `bytes` at the given points.
fn chunked(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for point in points {
        chunks.push(bytes[start..point].to_vec());
        start = point;
    }
    chunks.push(bytes[start..].to_vec());
    chunks
}

/// Feeds the chunks to the parser and every event to a rewriter; checks every frame.
fn check_stream(chunks: &[Vec<u8>], limit: usize) -> Vec<SseEvent> {
    let mut parser = SseParser::new(limit);
    let mut events = VecDeque::new();
    let mut rewriter = ChunkRewriter::new(true);
    let mut frames = Vec::new();
    let mut seen = Vec::new();
    let mut failed = false;
    for chunk in chunks {
        if parser.feed(chunk, &mut events).is_err() {
            failed = true;
        }
        for event in events.drain(..) {
            frames.extend(rewriter.push(&event.data));
            seen.push(event);
        }
        if failed {
            break;
        }
    }
    frames.extend(rewriter.finish(None));
    assert!(rewriter.is_finished());
    if let Some(error) = rewriter.error() {
        assert_shaped(error);
    }
    for frame in frames {
        let text = std::str::from_utf8(&frame).unwrap();
        let payload = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .unwrap();
        if payload != "[DONE]" {
            let value: Value = serde_json::from_str(payload).unwrap();
            if let Some(error) = value.get("error") {
                for field in ["message", "type", "param", "code"] {
                    assert!(error.get(field).is_some(), "{value}");
                }
            }
        }
    }
    seen
}

fn sse_event() -> impl Strategy<Value = SseEvent> {
    let data = prop_oneof![
        Just("[DONE]".to_owned()),
        "[ -~]{0,40}",
        json_value().prop_map(|v| v.to_string()),
        (text(), any::<bool>()).prop_map(|(content, finish)| {
            let finish = if finish { json!("stop") } else { Value::Null };
            json!({"id": "x", "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})
                .to_string()
        }),
    ];
    (prop::option::of("[a-z]{1,8}"), data).prop_map(|(event, data)| SseEvent { event, data })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_as_a_body(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_body(&bytes);
    }

    #[test]
    fn random_json_as_a_body(value in json_value()) {
        check_body(value.to_string().as_bytes());
    }

    #[test]
    fn chat_requests_with_random_values(request in chat_request()) {
        check_body(request.to_string().as_bytes());
    }

    #[test]
    fn random_bytes_as_an_upstream_stream(
        bytes in prop::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r'), Just(b':')],
            0..1024,
        ),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        limit in 1usize..256,
    ) {
        check_stream(&chunked(&bytes, &cuts), limit);
    }

    #[test]
    fn events_survive_any_line_ends_and_chunking(
        events in prop::collection::vec(sse_event(), 0..8),
        ending in prop::sample::select(vec!["\n", "\r", "\r\n"]),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut text = String::new();
        for event in &events {
            if let Some(name) = &event.event {
                text.push_str(&format!("event: {name}{ending}"));
            }
            for line in event.data.split('\n') {
                text.push_str(&format!("data: {line}{ending}"));
            }
            text.push_str(ending);
        }
        let seen = check_stream(&chunked(text.as_bytes(), &cuts), 1 << 20);
        prop_assert_eq!(seen, events);
    }
}
