use super::*;

fn zhipu(status: u16, code: &str, message: &str) -> ApiError {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    map_zhipu_error(status, body.to_string().as_bytes())
}

fn assert_error(e: &ApiError, status: u16, error_type: &str, code: &str) {
    assert_eq!(e.status().as_u16(), status, "{e}");
    assert_eq!(e.code.error_type(), error_type, "{e}");
    assert_eq!(Some(e.code.as_str()), Some(code), "{e}");
}

#[test]
fn auth_codes_blame_the_gateway_credential() {
    for code in ["1000", "1001", "1002", "1003", "1004"] {
        let e = zhipu(401, code, "Authorization Token非法");
        assert_error(&e, 502, "server_error", "upstream_auth_failed");
        assert_eq!(e.should_retry, Some(false));
    }
}

#[test]
fn message_is_english_and_ends_with_the_zhipu_code_and_text() {
    let e = zhipu(401, "1002", "Authorization Token非法，请确认");
    assert_eq!(
        e.message,
        "The gateway's upstream credential was rejected by Zhipu. (zhipu code 1002: Authorization Token非法，请确认)"
    );
}

#[test]
fn model_errors_name_the_model_when_told_it() {
    let body = r#"{"error":{"code":"1211","message":"模型不存在，请检查模型代码。"}}"#.as_bytes();
    let e = map_zhipu_error_for(400, body, Some("gpt-4o"));
    assert_eq!(
        e.message,
        "The model `gpt-4o` does not exist or you do not have access to it. (zhipu code 1211: 模型不存在，请检查模型代码。)"
    );
    let e = map_zhipu_error(400, body);
    assert!(
        e.message
            .starts_with("The model does not exist or you do not have access to it."),
        "{e}"
    );
}

#[test]
fn an_error_mapped_without_the_model_can_name_it_afterwards() {
    let e = name_the_model(zhipu(400, "1211", "模型不存在"), "gpt-4o");
    assert!(
        e.message
            .starts_with("The model `gpt-4o` does not exist or you do not have access to it."),
        "{e}"
    );
    let again = name_the_model(e.clone(), "other");
    assert_eq!(again.message, e.message);
    let other = name_the_model(zhipu(429, "1302", "并发"), "gpt-4o");
    assert!(!other.message.contains("gpt-4o"));
}

#[test]
fn every_mapped_code_has_an_english_message() {
    let english = [
        ("1000", "upstream credential was rejected"),
        ("1110", "account is unavailable"),
        (
            "1113",
            "You exceeded your current quota, please check your plan and billing details.",
        ),
        ("1210", "invalid parameter"),
        ("1212", "does not support"),
        ("1213", "Missing required parameter: 'messages'."),
        ("1214", "Invalid value for 'top_p'."),
        ("1215", "conflict"),
        ("1220", "not available"),
        ("1221", "does not exist"),
        ("1230", "You can retry"),
        ("1231", "duplicate request id"),
        ("1261", "This model's maximum context length was exceeded."),
        ("1301", "safety system"),
        ("1302", "Rate limit reached"),
        ("1303", "Rate limit reached for requests"),
        ("1304", "daily request quota"),
        ("1305", "overloaded"),
        ("1308", "usage limit"),
    ];
    for (code, words) in english {
        let raw = match code {
            "1213" => "messages 缺失",
            "1214" => "top_p参数非法",
            _ => "原文",
        };
        let e = zhipu(400, code, raw);
        assert!(e.message.contains(words), "{code}: {}", e.message);
        assert!(
            e.message.ends_with(&format!("(zhipu code {code}: {raw})")),
            "{code}: {}",
            e.message
        );
    }
}

#[test]
fn account_codes_are_403_without_retry() {
    for code in ["1110", "1111", "1112", "1120", "1121"] {
        let e = zhipu(429, code, "account");
        assert_error(&e, 403, "permission_error", "upstream_account_unavailable");
        assert_eq!(e.should_retry, Some(false));
    }
}

#[test]
fn no_balance_is_insufficient_quota_without_retry() {
    let e = zhipu(429, "1113", "您的账户已欠费");
    assert_error(&e, 429, "insufficient_quota", "insufficient_quota");
    assert_eq!(e.should_retry, Some(false));
}

#[test]
fn parameter_errors_name_the_field() {
    let e = zhipu(400, "1214", "top_p参数非法");
    assert_error(&e, 400, "invalid_request_error", "invalid_request");
    assert_eq!(e.param.as_deref(), Some("top_p"));
    let e = zhipu(400, "1210", "max_tokens: out of range");
    assert_eq!(e.param.as_deref(), Some("max_tokens"));
    let e = zhipu(400, "1213", "messages[1].content is missing");
    assert_eq!(e.param.as_deref(), Some("messages"));
    for code in ["1212", "1215"] {
        let e = zhipu(
            400,
            code,
            "Invalid API parameter, please check the documentation.",
        );
        assert_error(&e, 400, "invalid_request_error", "invalid_request");
        assert_eq!(e.param, None);
    }
}

#[test]
fn a_field_name_inside_a_longer_word_is_not_a_param() {
    assert_eq!(mentioned_param("stopped early"), None);
    assert_eq!(mentioned_param("non_stop value"), None);
    assert_eq!(mentioned_param("参数stop非法"), Some("stop"));
}

#[test]
fn model_codes() {
    assert_error(
        &zhipu(400, "1211", "模型不存在"),
        404,
        "invalid_request_error",
        "model_not_found",
    );
    assert_error(
        &zhipu(403, "1220", "no"),
        403,
        "permission_error",
        "model_not_permitted",
    );
    for code in ["1221", "1222"] {
        assert_error(
            &zhipu(400, code, "offline"),
            404,
            "invalid_request_error",
            "model_not_found",
        );
    }
}

#[test]
fn upstream_and_request_codes() {
    for code in ["1230", "1234"] {
        assert_error(
            &zhipu(500, code, "network"),
            502,
            "server_error",
            "upstream_error",
        );
    }
    let e = zhipu(400, "1231", "request_id重复");
    assert_error(&e, 400, "invalid_request_error", "duplicate_request_id");
    let e = zhipu(400, "1261", "Prompt exceeds max length");
    assert_error(&e, 400, "invalid_request_error", "context_length_exceeded");
    assert_eq!(e.param.as_deref(), Some("messages"));
    let e = zhipu(
        400,
        "1301",
        "系统检测到输入或生成内容可能包含不安全或敏感内容",
    );
    assert_error(&e, 400, "invalid_request_error", "content_filter");
}

#[test]
fn rate_limit_codes() {
    let e = zhipu(429, "1302", "并发数过高");
    assert_error(&e, 429, "rate_limit_error", "rate_limit_exceeded");
    assert_eq!(e.retry_after, Some(1));
    assert_eq!(e.should_retry, None);
    let e = zhipu(429, "1303", "频率过高");
    assert_error(&e, 429, "rate_limit_error", "rate_limit_exceeded");
    assert_eq!(e.retry_after, Some(5));
    let e = zhipu(429, "1304", "daily");
    assert_error(&e, 429, "rate_limit_error", "daily_quota_exceeded");
    assert_eq!(e.should_retry, Some(false));
    let e = zhipu(429, "1305", "当前API请求过多");
    assert_error(&e, 503, "server_error", "upstream_overloaded");
    assert_eq!(e.retry_after, Some(5));
    for code in ["1308", "1310", "1313"] {
        let e = zhipu(429, code, "limit");
        assert_error(&e, 429, "rate_limit_error", "usage_limit_reached");
        assert_eq!(e.should_retry, Some(false));
    }
}

#[test]
fn numeric_codes_are_accepted() {
    let body = br#"{"error":{"code":1113,"message":"arrears"}}"#;
    let e = map_zhipu_error(429, body);
    assert_error(&e, 429, "insufficient_quota", "insufficient_quota");
    assert!(e.message.ends_with("(zhipu code 1113: arrears)"), "{e}");
}

#[test]
fn unknown_code_falls_back_by_status_keeping_the_message() {
    let e = zhipu(503, "9999", "something new");
    assert_error(&e, 502, "server_error", "upstream_error");
    assert_eq!(
        e.message,
        "The upstream had an error while processing your request. (zhipu code 9999: something new)"
    );
}

#[test]
fn unexpected_bodies_map_by_status() {
    let spring = br#"{"timestamp":"2024-01-01T00:00:00","status":404,"error":"Not Found","path":"/v4/completions"}"#;
    let e = map_zhipu_error(404, spring);
    assert_error(&e, 502, "server_error", "upstream_not_found");
    assert_eq!(
        e.message,
        "upstream answered HTTP 404 with an unexpected body"
    );
    let html = b"<html><body>502 Bad Gateway</body></html>";
    assert_error(
        &map_zhipu_error(503, html),
        502,
        "server_error",
        "upstream_error",
    );
    assert_error(
        &map_zhipu_error(400, b""),
        400,
        "invalid_request_error",
        "invalid_request",
    );
    let e = map_zhipu_error(401, b"");
    assert_error(&e, 502, "server_error", "upstream_auth_failed");
    assert_error(
        &map_zhipu_error(403, b"nope"),
        403,
        "permission_error",
        "upstream_forbidden",
    );
    assert_error(
        &map_zhipu_error(429, b"{}"),
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
    );
    assert_error(
        &map_zhipu_error(200, b"[]"),
        502,
        "server_error",
        "upstream_error",
    );
}

#[test]
fn never_409() {
    let e = map_zhipu_error(409, br#"{"error":{"code":"1","message":"conflict"}}"#);
    assert_eq!(e.status().as_u16(), 502);
    assert_eq!(map_zhipu_error(409, b"").status().as_u16(), 502);
}

#[test]
fn garbage_never_panics() {
    let samples: [&[u8]; 8] = [
        b"\xff\xfe\x00",
        b"{\"error\":",
        b"{\"error\":null}",
        b"{\"error\":\"text\"}",
        b"{\"error\":{\"code\":[1],\"message\":7}}",
        b"{\"error\":{\"code\":\"\xe6\x88\x91\"}}",
        b"{\"error\":{\"code\":\"-1\",\"message\":\"\"}}",
        b"null",
    ];
    for body in samples {
        for status in [0, 200, 400, 401, 404, 429, 500, 599, 65535] {
            let e = map_zhipu_error(status, body);
            assert_ne!(e.status().as_u16(), 409);
            assert!(e.body()["error"]["message"].is_string());
        }
    }
}

#[test]
fn long_messages_are_truncated() {
    let long = "错".repeat(5000);
    let e = zhipu(400, "1214", &long);
    assert!(e.message.chars().count() < MAX_MESSAGE_CHARS + 200);
}
