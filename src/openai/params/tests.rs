use serde_json::json;

use super::*;

fn temperature(model: &str, t: f64) -> Map<String, Value> {
    let mut body = Map::new();
    apply_temperature(&mut body, Some(t), &ModelLimits::of(model)).expect("valid");
    body
}

#[test]
fn temperature_zero_means_greedy_decoding() {
    let body = temperature("glm-4", 0.0);
    assert_eq!(body.get("do_sample"), Some(&json!(false)));
    assert!(!body.contains_key("temperature"));
    // Rounds to 0 at two decimals.
    let body = temperature("glm-4.5", 0.004);
    assert_eq!(body.get("do_sample"), Some(&json!(false)));
}

#[test]
fn temperature_zero_keeps_a_client_do_sample() {
    let mut body = Map::new();
    body.insert("do_sample".to_owned(), json!(true));
    apply_temperature(&mut body, Some(0.0), &ModelLimits::of("glm-4")).expect("valid");
    assert_eq!(body.get("do_sample"), Some(&json!(true)));
}

#[test]
fn temperature_is_clamped_per_generation() {
    assert_eq!(temperature("glm-4", 1.5)["temperature"], json!(0.99));
    assert_eq!(temperature("glm-4-plus", 1.0)["temperature"], json!(0.99));
    assert_eq!(temperature("glm-3-turbo", 2.0)["temperature"], json!(0.99));
    assert_eq!(temperature("glm-4v-flash", 1.2)["temperature"], json!(0.99));
    assert_eq!(temperature("charglm-4", 1.2)["temperature"], json!(0.99));
    assert_eq!(temperature("glm-4.5", 1.5)["temperature"], json!(1.0));
    assert_eq!(
        temperature("glm-4.1v-thinking-flash", 1.5)["temperature"],
        json!(1.0)
    );
    assert_eq!(temperature("glm-5", 1.5)["temperature"], json!(1.0));
    assert_eq!(temperature("GLM-4.6", 1.5)["temperature"], json!(1.0));
}

#[test]
fn temperature_is_rounded_to_two_decimals() {
    assert_eq!(temperature("glm-4.5", 0.7)["temperature"], json!(0.7));
    assert_eq!(temperature("glm-4.5", 0.456)["temperature"], json!(0.46));
    assert_eq!(temperature("glm-4.5", 0.006)["temperature"], json!(0.01));
}

#[test]
fn temperature_out_of_openai_range_is_400() {
    for t in [-0.1, 2.01] {
        let e = apply_temperature(&mut Map::new(), Some(t), &ModelLimits::of("glm-4"))
            .expect_err("out of range");
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(e.param.as_deref(), Some("temperature"));
    }
}

#[test]
fn top_p_stays_inside_the_open_interval() {
    for (given, sent) in [
        (1.0, 0.99),
        (0.0, 0.01),
        (0.5, 0.5),
        (0.999, 0.99),
        (0.123, 0.12),
    ] {
        let mut body = Map::new();
        apply_top_p(&mut body, Some(given)).expect("valid");
        assert_eq!(body["top_p"], json!(sent), "top_p {given}");
    }
    let e = apply_top_p(&mut Map::new(), Some(1.5)).expect_err("out of range");
    assert_eq!(e.param.as_deref(), Some("top_p"));
}

fn max_tokens(model: &str, a: Option<i64>, b: Option<i64>) -> ApiResult<Option<Value>> {
    let mut body = Map::new();
    apply_max_tokens(&mut body, a, b, &ModelLimits::of(model))?;
    Ok(body.remove("max_tokens"))
}

#[test]
fn max_completion_tokens_becomes_max_tokens() {
    assert_eq!(
        max_tokens("glm-4.5", None, Some(500)).expect("ok"),
        Some(json!(500))
    );
    assert_eq!(
        max_tokens("glm-4.5", Some(300), Some(500)).expect("ok"),
        Some(json!(300))
    );
    assert_eq!(
        max_tokens("glm-4.5", Some(900), Some(500)).expect("ok"),
        Some(json!(500))
    );
    assert_eq!(max_tokens("glm-4.5", None, None).expect("ok"), None);
}

#[test]
fn max_tokens_is_clamped_to_the_model_cap() {
    let cases = [
        ("charglm-4", 4096),
        ("emohaa", 4096),
        ("glm-4-voice", 4096),
        ("glm-4", 8192),
        ("glm-4-0520", 8192),
        ("glm-3-turbo", 8192),
        ("glm-4v", 8192),
        ("glm-4.5", 98_304),
        ("glm-4.5-air", 98_304),
        ("glm-4.6", 131_072),
        ("glm-5", 131_072),
        ("glm-4-plus", 131_072),
    ];
    for (model, cap) in cases {
        let sent = max_tokens(model, None, Some(1_000_000)).expect("ok");
        assert_eq!(sent, Some(json!(cap)), "{model}");
    }
}

#[test]
fn max_tokens_below_one_is_400_naming_the_field() {
    let e = max_tokens("glm-4", Some(0), None).expect_err("invalid");
    assert_eq!(e.param.as_deref(), Some("max_tokens"));
    let e = max_tokens("glm-4", None, Some(-5)).expect_err("invalid");
    assert_eq!(e.param.as_deref(), Some("max_completion_tokens"));
}

#[test]
fn stop_rules() {
    let mut body = Map::new();
    apply_stop(&mut body, Some(Stop::One("x".to_owned()))).expect("ok");
    assert_eq!(body["stop"], json!(["x"]));
    let mut body = Map::new();
    apply_stop(&mut body, Some(Stop::Many(vec!["END".to_owned()]))).expect("ok");
    assert_eq!(body["stop"], json!(["END"]));
    let mut body = Map::new();
    apply_stop(&mut body, Some(Stop::Many(Vec::new()))).expect("ok");
    apply_stop(&mut body, None).expect("ok");
    assert!(body.is_empty());
    let four = ["a", "b", "c", "d"].map(str::to_owned).to_vec();
    let e = apply_stop(&mut Map::new(), Some(Stop::Many(four))).expect_err("too many");
    assert_eq!(e.status().as_u16(), 400);
    assert_eq!(e.param.as_deref(), Some("stop"));
    assert!(e.message.contains("one stop sequence"), "{}", e.message);
}

#[test]
fn user_ids_are_6_to_128_chars() {
    assert_eq!(user_id_for("u1".to_owned()), "user-u1");
    assert_eq!(user_id_for("u".to_owned()), "user-u");
    assert_eq!(user_id_for("alice-1".to_owned()), "alice-1");
    assert_eq!(user_id_for("用户一二三四".to_owned()), "用户一二三四");
    let long = "x".repeat(129);
    let hashed = user_id_for(long.clone());
    assert_eq!(hashed.len(), 64);
    assert_eq!(hashed, user_id_for(long));
    assert_eq!(user_id_for("y".repeat(128)).len(), 128);
}

#[test]
fn user_falls_back_to_safety_identifier_and_yields_to_user_id() {
    let mut body = Map::new();
    apply_user(&mut body, None, Some("sid-123456".to_owned()));
    assert_eq!(body["user_id"], "sid-123456");
    let mut body = Map::new();
    apply_user(
        &mut body,
        Some("u1".to_owned()),
        Some("sid-123456".to_owned()),
    );
    assert_eq!(body["user_id"], "user-u1");
    let mut body = Map::new();
    apply_user(&mut body, Some(String::new()), None);
    assert!(body.is_empty());
    let mut body = Map::new();
    body.insert("user_id".to_owned(), json!("mine-123"));
    apply_user(&mut body, Some("u1".to_owned()), None);
    assert_eq!(body["user_id"], "mine-123");
}
