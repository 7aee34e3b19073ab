//! `POST /images/generations` (CogView and GLM-Image: one image per call, Zhipu's size and
//! quality rules) and `GET /files/images/{name}`, the unauthenticated CDN that serves the PNGs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::chat::forced_reply;
use super::directives::Directives;
use super::errors::{spring_not_found, ZhipuError};
use super::png;
use super::state::{Shared, StoredImage};
use super::validate::field;
use super::{auth, embeddings};

/// The URL path the generated images are served under.
pub(crate) const FILES_PATH: &str = "/files/images/";
const COGVIEW_SIZES: &[&str] = &[
    "1024x1024",
    "768x1344",
    "864x1152",
    "1344x768",
    "1152x864",
    "1440x720",
    "720x1440",
];
const GLM_IMAGE_SIZES: &[&str] = &[
    "1280x1280",
    "1568x1056",
    "1056x1568",
    "1472x1088",
    "1088x1472",
    "1728x960",
    "960x1728",
];
/// Side of the small PNG every image is; `#big-image` makes it this big instead (~12 MB).
const SMALL_SIDE: u32 = 8;
const BIG_SIDE: u32 = 2048;

pub(crate) async fn generations(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now_ms = chrono::Utc::now().timestamp_millis();
    if let Err(err) = auth::check(&shared.keys, &headers, now_ms) {
        return err.into_response();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return ZhipuError::new(1210, "请求体必须是JSON对象").into_response();
    };
    let prompt = match validate(&body) {
        Ok(prompt) => prompt,
        Err(err) => return err.into_response(),
    };
    if let Some(id) = body.get("request_id").and_then(Value::as_str) {
        if !shared.remember_request_id(id) {
            return ZhipuError::from_code(1231).into_response();
        }
    }
    let directives = Directives::parse(prompt);
    if let Some(response) = forced_reply(&directives, uri.path()) {
        return response;
    }
    if let Some(delay) = directives.slow {
        tokio::time::sleep(delay).await;
    }
    let name = format!("{}.png", uuid::Uuid::new_v4());
    let image = StoredImage {
        rgb: colour(prompt),
        big: directives.big_image,
        delay: directives.slow_image,
    };
    shared.store_image(name.clone(), image);
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let created = chrono::Utc::now().timestamp();
    Json(json!({"created": created, "data": [{"url": format!("http://{host}{FILES_PATH}{name}")}]}))
        .into_response()
}

/// `GET /files/images/{name}`: the PNG, with no authentication, like Zhipu's CDN.
pub(crate) async fn file(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let Some(image) = shared.image(&name) else {
        return spring_not_found(&format!("{FILES_PATH}{name}"));
    };
    if let Some(delay) = image.delay {
        tokio::time::sleep(delay).await;
    }
    ([(CONTENT_TYPE, "image/png")], render(&image)).into_response()
}

/// The PNG bytes of a stored image.
pub(crate) fn render(image: &StoredImage) -> Vec<u8> {
    let side = if image.big { BIG_SIDE } else { SMALL_SIDE };
    png::solid(side, side, image.rgb)
}

/// A colour that depends only on the prompt, so tests can tell images apart.
fn colour(prompt: &str) -> [u8; 3] {
    let v = embeddings::embedding_vector(prompt, 3);
    let channel = |i: usize| v.get(i).map_or(0, |x| ((x + 1.0) * 127.5) as u8);
    [channel(0), channel(1), channel(2)]
}

/// Validates the body and returns the prompt. Fields outside Zhipu's schema (OpenAI's `n`,
/// `response_format`, `style`, `user`) are ignored, as Zhipu ignores them.
fn validate(body: &Value) -> Result<&str, ZhipuError> {
    let Some(obj) = body.as_object() else {
        return Err(ZhipuError::new(1210, "请求体必须是JSON对象"));
    };
    let model = field(obj, "model").ok_or_else(|| ZhipuError::missing("model"))?;
    let model = model
        .as_str()
        .ok_or_else(|| ZhipuError::invalid("model", "must be a string"))?;
    let glm_image = match model {
        "glm-image" => true,
        "cogview-4" | "cogview-4-250304" | "cogview-3-flash" => false,
        _ => return Err(ZhipuError::from_code(1211)),
    };
    let prompt = field(obj, "prompt")
        .and_then(Value::as_str)
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| ZhipuError::invalid("prompt", "prompt must be a non-empty string"))?;
    if let Some(size) = field(obj, "size") {
        check_size(size, glm_image)?;
    }
    check_quality(obj, model)?;
    if let Some(value) = field(obj, "user_id") {
        let len = value.as_str().map(|s| s.chars().count());
        if !len.is_some_and(|n| (6..=128).contains(&n)) {
            let detail = "user_id must be a string of 6 to 128 characters";
            return Err(ZhipuError::invalid("user_id", detail));
        }
    }
    if field(obj, "watermark_enabled").is_some_and(|v| !v.is_boolean()) {
        return Err(ZhipuError::invalid(
            "watermark_enabled",
            "must be a boolean",
        ));
    }
    if field(obj, "request_id").is_some_and(|v| v.as_str().is_none_or(str::is_empty)) {
        let detail = "must be a non-empty string";
        return Err(ZhipuError::invalid("request_id", detail));
    }
    Ok(prompt)
}

/// A preset size of the model family, or a custom `WxH` within its limits.
fn check_size(size: &Value, glm_image: bool) -> Result<(), ZhipuError> {
    let size = size.as_str().unwrap_or_default();
    let (presets, rule) = if glm_image {
        (
            GLM_IMAGE_SIZES,
            "sides multiples of 32, at most 2^22 pixels",
        )
    } else {
        (
            COGVIEW_SIZES,
            "sides 512-2048 and multiples of 16, at most 2^21 pixels",
        )
    };
    if presets.contains(&size) {
        return Ok(());
    }
    let parsed = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u64>().ok()?, h.parse::<u64>().ok()?)));
    let fits = parsed.is_some_and(|(w, h)| {
        if glm_image {
            w > 0 && h > 0 && w.is_multiple_of(32) && h.is_multiple_of(32) && w * h <= 1 << 22
        } else {
            let side = |s: u64| (512..=2048).contains(&s) && s.is_multiple_of(16);
            side(w) && side(h) && w * h <= 1 << 21
        }
    });
    if fits {
        Ok(())
    } else {
        let detail = format!("size {size:?} is not a preset and breaks the custom rule: {rule}");
        Err(ZhipuError::invalid("size", &detail))
    }
}

/// `quality` is `hd` or `standard`; cogview-4-250304 takes either, glm-image only `hd`, and
/// the other models nothing but their fixed `standard`.
fn check_quality(obj: &Map<String, Value>, model: &str) -> Result<(), ZhipuError> {
    let Some(value) = field(obj, "quality") else {
        return Ok(());
    };
    let quality = value.as_str().unwrap_or_default();
    let allowed: &[&str] = match model {
        "cogview-4-250304" => &["hd", "standard"],
        "glm-image" => &["hd"],
        _ => &["standard"],
    };
    if allowed.contains(&quality) {
        return Ok(());
    }
    let detail = format!("quality {quality:?} is not supported by {model}");
    Err(ZhipuError::invalid("quality", &detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_each_family() {
        let ok = |size: &str, glm: bool| check_size(&json!(size), glm).is_ok();
        assert!(ok("1024x1024", false) && ok("720x1440", false) && ok("1792x1024", false));
        assert!(
            ok("1280x1280", false),
            "a custom size within the cogview rule"
        );
        assert!(!ok("2048x2048", false) && !ok("1000x1000", false) && !ok("256x256", false));
        assert!(!ok("1024", false) && !ok("auto", false));
        assert!(ok("1280x1280", true) && ok("2048x2048", true) && ok("64x64", true));
        assert!(!ok("1000x1000", true) && !ok("4096x2048", true));
    }

    #[test]
    fn quality_depends_on_the_model() {
        let check = |model: &str, q: &str| {
            let obj = json!({ "quality": q });
            check_quality(obj.as_object().expect("object"), model).is_ok()
        };
        assert!(check("cogview-4-250304", "hd") && check("cogview-4-250304", "standard"));
        assert!(check("glm-image", "hd") && !check("glm-image", "standard"));
        assert!(check("cogview-4", "standard") && !check("cogview-4", "hd"));
        assert!(!check("cogview-4-250304", "high"));
    }
}
