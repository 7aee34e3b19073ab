//! The image generation request as OpenAI clients send it, translated into the body of one
//! CogView call (CogView makes one image per call; `n` images are `n` calls), and the answer.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::params::apply_user;
use crate::catalogue::{parse_size, Catalogue, ModelInfo};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json_path::At;

#[derive(Debug, Deserialize)]
pub struct ImageRequest {
    pub model: Option<String>,
    pub prompt: String,
    pub n: Option<i64>,
    pub size: Option<String>,
    pub quality: Option<String>,
    pub response_format: Option<String>,
    pub user: Option<String>,
    /// OpenAI-only: dropped.
    #[serde(rename = "style")]
    pub _style: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// OpenAI's default when a request names no model.
pub const DEFAULT_MODEL: &str = "dall-e-2";

/// gpt-image fields CogView has no equivalent for.
const DROPPED: &[&str] = &[
    "background",
    "moderation",
    "output_format",
    "output_compression",
    "partial_images",
    "stream",
];

/// One upstream call's body, how many calls to make, and how to answer.
#[derive(Debug)]
pub struct ImagePlan {
    pub body: Map<String, Value>,
    pub count: usize,
    pub b64_json: bool,
}

impl ImagePlan {
    pub fn new(request: ImageRequest, upstream_model: &str, max_n: usize) -> ApiResult<Self> {
        if request.prompt.trim().is_empty() {
            return Err(ApiError::invalid_request("prompt must not be empty.").param("prompt"));
        }
        let count = match request.n {
            None => 1,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=max_n).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_request(format!("n must be between 1 and {max_n}."))
                        .param("n")
                })?,
        };
        let b64_json = match request.response_format.as_deref() {
            None | Some("url") => false,
            Some("b64_json") => true,
            Some(other) => {
                return Err(ApiError::invalid_request(format!(
                    "response_format must be `url` or `b64_json`, not `{other}`."
                ))
                .param("response_format"))
            }
        };
        let mut body = request.extra;
        for key in DROPPED {
            body.remove(*key);
        }
        body.insert("model".to_owned(), Value::from(upstream_model));
        body.insert("prompt".to_owned(), Value::from(request.prompt));
        let info = Catalogue::builtin().model(upstream_model);
        if let Some(size) = size_for(upstream_model, &info, request.size.as_deref())? {
            body.insert("size".to_owned(), Value::from(size));
        }
        if let Some(quality) = quality_for(&info, request.quality.as_deref()) {
            body.insert("quality".to_owned(), Value::from(quality));
        }
        apply_user(&mut body, request.user, None);
        Ok(Self {
            body,
            count,
            b64_json,
        })
    }
}

/// OpenAI's `data` item for one image.
pub fn image_item(url: &str, b64: Option<String>) -> Value {
    match b64 {
        Some(b64) => json!({ "b64_json": b64 }),
        None => json!({ "url": url }),
    }
}

/// The image's URL in one CogView answer (`data[0].url`).
pub fn image_url(answer: &Value) -> ApiResult<&str> {
    answer
        .at("/data/0/url")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UpstreamInvalidResponse,
                "The upstream's image answer has no image URL.",
            )
        })
}

/// A size the model accepts (its catalogue presets and custom-size rule): squares and `auto`
/// become the model's default, OpenAI's wide and tall sizes the preset of the nearest shape; a
/// `WxH` the model takes as a custom size passes.
fn size_for(model: &str, info: &ModelInfo, size: Option<&str>) -> ApiResult<Option<String>> {
    let presets = &info.sizes;
    if presets.is_empty() {
        // A model the catalogue has no sizes for: its sizes are the upstream's business.
        return Ok(size.filter(|s| *s != "auto").map(String::from));
    }
    let Some(size) = size.filter(|s| *s != "auto") else {
        return Ok(None);
    };
    let Some((w, h)) = parse_size(size) else {
        return Err(ApiError::invalid_request(format!(
            "size must be `auto` or WIDTHxHEIGHT like 1024x1024, not `{size}`."
        ))
        .param("size"));
    };
    if presets.contains(&(w, h)) {
        return Ok(Some(format!("{w}x{h}")));
    }
    if OPENAI_SIZES.contains(&(w, h)) {
        let (pw, ph) = nearest_shape(presets, w, h);
        return Ok(Some(format!("{pw}x{ph}")));
    }
    if info.custom_size.is_some_and(|custom| custom.fits(w, h)) {
        return Ok(Some(format!("{w}x{h}")));
    }
    Err(ApiError::invalid_request(format!(
        "The model `{model}` cannot make images of size {size}; use `auto`, one of \
         OpenAI's sizes, or one of {}.",
        presets
            .iter()
            .map(|(w, h)| format!("{w}x{h}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .param("size"))
}

/// Sizes OpenAI's image models take; each becomes the model's preset of the nearest shape.
const OPENAI_SIZES: &[(u32, u32)] = &[
    (256, 256),
    (512, 512),
    (1024, 1024),
    (1792, 1024),
    (1024, 1792),
    (1536, 1024),
    (1024, 1536),
];

/// The preset whose aspect ratio is closest to `w:h`.
fn nearest_shape(presets: &[(u32, u32)], w: u32, h: u32) -> (u32, u32) {
    let ratio = |w: u32, h: u32| (f64::from(w) / f64::from(h)).ln();
    let target = ratio(w, h);
    presets
        .iter()
        .copied()
        .min_by(|a, b| {
            let da = (ratio(a.0, a.1) - target).abs();
            let db = (ratio(b.0, b.1) - target).abs();
            da.total_cmp(&db)
        })
        .unwrap_or((1024, 1024))
}

/// The quality to send, from the catalogue's `qualities`: a model with one (glm-image: `hd`)
/// always gets it; one with several gets OpenAI's `hd`/`high` as `hd` and
/// `standard`/`medium`/`low` as `standard` when it lists them; otherwise the model's default.
fn quality_for(info: &ModelInfo, quality: Option<&str>) -> Option<String> {
    if let [only] = info.qualities.as_slice() {
        return Some(only.clone());
    }
    let wanted = match quality? {
        "hd" | "high" => "hd",
        "standard" | "medium" | "low" => "standard",
        _ => return None,
    };
    info.qualities.iter().find(|q| *q == wanted).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(body: Value, model: &str) -> ApiResult<ImagePlan> {
        ImagePlan::new(serde_json::from_value(body).unwrap(), model, 4)
    }

    fn size(model: &str, size: &str) -> ApiResult<Option<String>> {
        size_for(model, &Catalogue::builtin().model(model), Some(size))
    }

    /// Retired CogView names take only their presets: OpenAI's sizes map onto them, other
    /// custom sizes are refused here rather than upstream.
    #[test]
    fn every_image_model_of_the_catalogue_has_size_rules() {
        for model in ["cogview-3", "cogview-3-plus"] {
            assert_eq!(
                size(model, "1792x1024").unwrap().as_deref(),
                Some("1344x768")
            );
            assert_eq!(
                size(model, "1600x896").unwrap_err().param.as_deref(),
                Some("size")
            );
        }
        let catalogue = Catalogue::builtin();
        for name in catalogue.names() {
            let info = catalogue.model(name);
            if info.kind == crate::catalogue::Kind::Image {
                assert!(!info.sizes.is_empty(), "{name} has no sizes");
                assert!(size(name, "1024x1536").unwrap().is_some(), "{name}");
            }
        }
    }

    #[test]
    fn openai_sizes_become_sizes_cogview_takes() {
        for (asked, sent) in [
            ("256x256", "1024x1024"),
            ("512x512", "1024x1024"),
            ("1024x1024", "1024x1024"),
            ("1792x1024", "1344x768"),
            ("1024x1792", "768x1344"),
            ("1536x1024", "1152x864"),
            ("768x1344", "768x1344"),
            ("1600x896", "1600x896"),
        ] {
            assert_eq!(
                size("cogview-4", asked).unwrap().as_deref(),
                Some(sent),
                "{asked}"
            );
        }
        assert_eq!(size("cogview-4", "auto").unwrap(), None);
        assert_eq!(
            size("glm-image", "1792x1024").unwrap().as_deref(),
            Some("1728x960")
        );
        assert_eq!(
            size("glm-image", "256x256").unwrap().as_deref(),
            Some("1280x1280")
        );
        for bad in ["100x100", "abc", "4096x4096", "0x0"] {
            assert_eq!(
                size("cogview-4", bad).unwrap_err().param.as_deref(),
                Some("size")
            );
        }
    }

    #[test]
    fn n_format_quality_and_style_translate() {
        let p = plan(
            json!({"prompt": "a cat", "n": 3, "response_format": "b64_json", "quality": "hd",
                "style": "vivid", "user": "u1", "size": "256x256", "background": "auto"}),
            "cogview-4-250304",
        )
        .unwrap();
        assert_eq!((p.count, p.b64_json), (3, true));
        assert_eq!(p.body["quality"], "hd");
        assert_eq!(p.body["size"], "1024x1024");
        assert_eq!(p.body["user_id"], "user-u1");
        for gone in ["style", "n", "response_format", "background"] {
            assert!(!p.body.contains_key(gone), "{gone}");
        }
        let p = plan(json!({"prompt": "a cat", "quality": "hd"}), "cogview-4").unwrap();
        assert!(!p.body.contains_key("quality"));
        for (body, param) in [
            (json!({"prompt": "x", "n": 5}), "n"),
            (json!({"prompt": "x", "n": 0}), "n"),
            (json!({"prompt": " "}), "prompt"),
            (
                json!({"prompt": "x", "response_format": "png"}),
                "response_format",
            ),
        ] {
            assert_eq!(
                plan(body, "cogview-4").unwrap_err().param.as_deref(),
                Some(param)
            );
        }
    }
}
