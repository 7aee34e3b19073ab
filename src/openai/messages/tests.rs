use serde_json::json;

use super::*;

fn translate(messages: Value) -> ApiResult<Vec<Value>> {
    let messages: Vec<ChatMessage> = serde_json::from_value(messages).expect("messages parse");
    to_glm(messages)
}

#[test]
fn empty_messages_are_400() {
    let e = translate(json!([])).expect_err("empty");
    assert_eq!(e.param.as_deref(), Some("messages"));
}

#[test]
fn developer_becomes_system_and_each_role_keeps_only_its_documented_fields() {
    let out = translate(json!([
        {"role": "developer", "content": "be brief", "name": "ops"},
        {"role": "system", "content": "more", "cache_control": {"type": "ephemeral"}},
        {"role": "user", "content": "hi", "name": "bob", "extra_key": 1, "tool_call_id": "x"},
        {"role": "assistant", "content": "hello", "refusal": null, "annotations": [], "audio": null,
         "function_call": null, "parsed": {"a": 1}, "reasoning_content": "hmm", "tool_call_id": "x"},
        {"role": "tool", "tool_call_id": "call_1", "content": "40 C", "name": "weather",
         "tool_calls": []}
    ]))
    .expect("valid");
    assert_eq!(out[0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(out[1], json!({"role": "system", "content": "more"}));
    assert_eq!(out[2], json!({"role": "user", "content": "hi"}));
    assert_eq!(out[3], json!({"role": "assistant", "content": "hello"}));
    assert_eq!(
        out[4],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "40 C"})
    );
}

#[test]
fn fields_the_openai_sdks_write_never_fail() {
    let out = translate(json!([
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": null, "refusal": "I can't help with that.",
         "function_call": null, "tool_calls": null, "audio": null, "annotations": []},
        {"role": "user", "content": "ok"}
    ]))
    .expect("valid");
    assert_eq!(out[1], json!({"role": "assistant", "content": ""}));
}

#[test]
fn unknown_roles_are_400_naming_the_message() {
    let e =
        translate(json!([{"role": "user", "content": "a"}, {"role": "function", "content": "b"}]))
            .expect_err("bad role");
    assert_eq!(e.param.as_deref(), Some("messages[1].role"));
}

#[test]
fn text_parts_are_joined_into_a_string() {
    let out = translate(json!([{"role": "user", "content": [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two", "cache_control": {"type": "ephemeral"}}
    ]}]))
    .expect("valid");
    assert_eq!(out[0]["content"], "one\ntwo");
}

#[test]
fn image_parts_keep_the_array_with_bare_base64_and_no_detail() {
    let out = translate(json!([{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}}
    ]}]))
    .expect("valid");
    assert_eq!(
        out[0]["content"],
        json!([
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "AAAA"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}}
        ])
    );
}

#[test]
fn data_urls_without_base64_marker_are_left_alone() {
    assert_eq!(
        strip_data_url("data:text/plain,hi".to_owned()),
        "data:text/plain,hi"
    );
    assert_eq!(
        strip_data_url("data:image/jpeg;base64,/9j/".to_owned()),
        "/9j/"
    );
    assert_eq!(
        strip_data_url("https://x/;base64,y".to_owned()),
        "https://x/;base64,y"
    );
}

#[test]
fn audio_and_file_parts_are_400_naming_the_part() {
    for kind in ["input_audio", "file", "refusal"] {
        let e = translate(json!([{"role": "user", "content": [
            {"type": "text", "text": "listen"},
            {"type": kind}
        ]}]))
        .expect_err("unsupported part");
        assert_eq!(
            e.param.as_deref(),
            Some("messages[0].content[1].type"),
            "{kind}"
        );
    }
}

#[test]
fn tool_round_trip_keeps_ids_and_only_documented_call_fields() {
    let out = translate(json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "index": 0,
             "function": {"name": "weather", "arguments": "{}", "parsed_arguments": {}}, "extra": "x"},
            {"id": "call_2", "function": {"name": "time", "arguments": {"tz": "UTC"}}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "40 C", "name": "weather"}
    ]))
    .expect("valid");
    assert_eq!(
        out[1],
        json!({"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "weather", "arguments": "{}"}},
            {"id": "call_2", "type": "function",
             "function": {"name": "time", "arguments": "{\"tz\":\"UTC\"}"}}
        ]})
    );
    assert_eq!(
        out[2],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "40 C"})
    );
}

#[test]
fn content_of_a_wrong_type_is_400() {
    let e = translate(json!([{"role": "user", "content": 5}])).expect_err("bad content");
    assert_eq!(e.param.as_deref(), Some("messages[0].content"));
}
