//! The `[zhipu]` section and its environment variables: the upstream keys, base URL, auth mode
//! and timeouts.

use std::time::Duration;

use serde::Deserialize;

use super::{positive, ConfigError, Secret, DEFAULT_BASE_URL};

#[derive(Debug, Clone)]
pub struct ZhipuConfig {
    /// Upstream keys, each `id.secret`. Empty is allowed by `load`; `serve` requires one.
    pub api_keys: Vec<Secret>,
    pub base_url: String,
    pub auth: AuthMode,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub total_timeout: Duration,
    /// Zhipu's Response API base (`[responses] base_url`); `None`: derived from `base_url`.
    pub responses_base_url: Option<String>,
    /// The longest an open stream may go without a byte from the upstream.
    pub stream_idle_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// HS256 tokens signed from the key, cached and renewed before they expire.
    Jwt,
    /// The raw `id.secret` key as a Bearer token.
    Bearer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileZhipu {
    pub(super) api_keys: Option<Vec<String>>,
    base_url: Option<String>,
    auth: Option<AuthMode>,
    connect_timeout_secs: Option<u64>,
    first_byte_timeout_secs: Option<u64>,
    total_timeout_secs: Option<u64>,
    stream_idle_timeout_secs: Option<u64>,
    pub(super) models: Option<Vec<String>>,
}

pub(super) fn zhipu_config(
    file_keys: Option<Vec<String>>,
    file: &FileZhipu,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ZhipuConfig, ConfigError> {
    let env_keys = env("ZHIPUAI_API_KEY").or_else(|| env("ZHIPU_API_KEY"));
    let keys: Vec<String> = match env_keys {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect(),
        None => file_keys.unwrap_or_default(),
    };
    let auth = match env("ZHIPUAI_AUTH") {
        Some(mode) => match mode.to_ascii_lowercase().as_str() {
            "jwt" => AuthMode::Jwt,
            "bearer" => AuthMode::Bearer,
            _ => {
                return Err(ConfigError::new(
                    "zhipu.auth (ZHIPUAI_AUTH)",
                    format!("`{mode}` is neither `jwt` nor `bearer`"),
                ))
            }
        },
        None => file.auth.unwrap_or(AuthMode::Jwt),
    };
    for key in &keys {
        let parts: Vec<&str> = key.split('.').collect();
        if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::new(
                "zhipu.api_keys (ZHIPUAI_API_KEY)",
                "each key must look like `<id>.<secret>`",
            ));
        }
    }
    let base_url = env("ZHIPUAI_BASE_URL")
        .or_else(|| file.base_url.clone())
        .unwrap_or_else(|| DEFAULT_BASE_URL.into());
    let parsed = url::Url::parse(&base_url).map_err(|e| {
        ConfigError::new(
            "zhipu.base_url (ZHIPUAI_BASE_URL)",
            format!("`{base_url}` is not a URL: {e}"),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            "zhipu.base_url (ZHIPUAI_BASE_URL)",
            "must be an http:// or https:// URL",
        ));
    }
    Ok(ZhipuConfig {
        api_keys: keys.into_iter().map(Secret::new).collect(),
        base_url: base_url.trim_end_matches('/').to_owned(),
        auth,
        connect_timeout: Duration::from_secs(positive(
            "zhipu.connect_timeout_secs",
            file.connect_timeout_secs.unwrap_or(5),
        )?),
        first_byte_timeout: Duration::from_secs(positive(
            "zhipu.first_byte_timeout_secs",
            file.first_byte_timeout_secs.unwrap_or(120),
        )?),
        total_timeout: Duration::from_secs(positive(
            "zhipu.total_timeout_secs",
            file.total_timeout_secs.unwrap_or(900),
        )?),
        responses_base_url: None,
        stream_idle_timeout: Duration::from_secs(positive(
            "zhipu.stream_idle_timeout_secs",
            file.stream_idle_timeout_secs.unwrap_or(120),
        )?),
    })
}
