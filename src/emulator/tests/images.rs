//! Images: generation (one image, Zhipu's rules, directives) and the unauthenticated download.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{error_code, Emulator};

async fn generate(emu: &Emulator, body: Value) -> reqwest::Response {
    emu.post("/images/generations", &body).await
}

/// Generates one image for `prompt` and returns its URL.
async fn image_url(emu: &Emulator, prompt: &str) -> String {
    let body = json!({"model": "cogview-4", "prompt": prompt});
    let answer: Value = generate(emu, body).await.json().await.expect("json");
    answer["data"][0]["url"].as_str().expect("url").to_owned()
}

#[tokio::test]
async fn one_image_per_call_served_without_a_key() {
    let emu = Emulator::start().await;
    let body = json!({"model": "cogview-4", "prompt": "a red fox", "n": 2,
        "response_format": "b64_json", "style": "vivid", "size": "1792x1024"});
    let response = generate(&emu, body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("json");
    assert!(answer["created"].is_i64());
    let data = answer["data"].as_array().expect("data");
    assert_eq!(data.len(), 1);
    let url = data[0]["url"].as_str().expect("url");
    let host = emu.base.trim_end_matches("/api/paas/v4");
    assert!(url.starts_with(&format!("{host}/files/images/")), "{url}");
    assert!(url.ends_with(".png"));
    let file = emu.client.get(url).send().await.expect("get");
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/png");
    let bytes = file.bytes().await.expect("bytes");
    assert_eq!(&bytes[1..4], b"PNG");
    assert_eq!(emu.handle.image_bytes(url).as_deref(), Some(&bytes[..]));
    let name = url.rsplit('/').next().expect("name");
    assert_eq!(emu.handle.image_bytes(name).as_deref(), Some(&bytes[..]));
    let other = image_url(&emu, "a blue whale").await;
    assert_ne!(emu.handle.image_bytes(&other).as_deref(), Some(&bytes[..]));
}

#[tokio::test]
async fn unknown_files_are_404() {
    let emu = Emulator::start().await;
    let host = emu.base.trim_end_matches("/api/paas/v4");
    let url = format!("{host}/files/images/00000000-0000-0000-0000-000000000000.png");
    let response = emu.client.get(url).send().await.expect("get");
    assert_eq!(response.status(), 404);
    assert!(emu.handle.image_bytes("nope.png").is_none());
}

#[tokio::test]
async fn big_and_slow_images() {
    let emu = Emulator::start().await;
    let url = image_url(&emu, "#big-image a mountain").await;
    let bytes = emu
        .client
        .get(&url)
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert!(
        bytes.len() > 12_000_000 && bytes.len() < 13_000_000,
        "{}",
        bytes.len()
    );
    let url = image_url(&emu, "a cloud #slow-image 200").await;
    let started = Instant::now();
    let response = emu.client.get(&url).send().await.expect("get");
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn prompt_directives_work_like_chat() {
    let emu = Emulator::start().await;
    let body = json!({"model": "cogview-3-flash", "prompt": "#error 1301"});
    assert_eq!(
        error_code(generate(&emu, body).await).await,
        (400, "1301".to_owned())
    );
    let body = json!({"model": "cogview-3-flash", "prompt": "x #http html"});
    assert_eq!(generate(&emu, body).await.status(), 502);
}

#[tokio::test]
async fn bad_requests_get_zhipu_errors() {
    let emu = Emulator::start().await;
    let cases = [
        (json!({"model": "dall-e-3", "prompt": "p"}), "1211"),
        (json!({"model": "cogview-4"}), "1214"),
        (json!({"model": "cogview-4", "prompt": ""}), "1214"),
        (
            json!({"model": "cogview-4", "prompt": "p", "size": "256x256"}),
            "1214",
        ),
        (
            json!({"model": "cogview-4", "prompt": "p", "size": "auto"}),
            "1214",
        ),
        (
            json!({"model": "glm-image", "prompt": "p", "size": "1000x1000"}),
            "1214",
        ),
        (
            json!({"model": "cogview-4", "prompt": "p", "quality": "hd"}),
            "1214",
        ),
        (
            json!({"model": "glm-image", "prompt": "p", "quality": "standard"}),
            "1214",
        ),
        (
            json!({"model": "cogview-4-250304", "prompt": "p", "quality": "high"}),
            "1214",
        ),
        (
            json!({"model": "cogview-4", "prompt": "p", "user_id": "u1"}),
            "1214",
        ),
    ];
    for (body, code) in cases {
        let response = generate(&emu, body.clone()).await;
        assert_eq!(error_code(response).await, (400, code.to_owned()), "{body}");
    }
    let ok = [
        json!({"model": "cogview-4-250304", "prompt": "p", "quality": "hd", "size": "864x1152"}),
        json!({"model": "glm-image", "prompt": "p", "quality": "hd", "size": "1728x960"}),
        json!({"model": "cogview-4", "prompt": "p", "quality": "standard", "user_id": "user-42",
            "watermark_enabled": false}),
    ];
    for body in ok {
        assert_eq!(generate(&emu, body.clone()).await.status(), 200, "{body}");
    }
}
