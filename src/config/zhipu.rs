//! The `[zhipu]` section and its environment variables: the upstream keys, base URL, auth mode,
//! timeouts (with per-model overrides in `[zhipu.timeouts."glm-5*"]`), retries and fallback
//! models (`[zhipu.fallbacks]`).

use std::collections::BTreeMap;
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
    /// Upstream attempts per model for one request (the first included), at least 1.
    pub max_attempts: u32,
    /// GLM model → the models tried, in order, once it failed on every attempt.
    pub fallbacks: BTreeMap<String, Vec<String>>,
    /// Timeouts for the GLM models matching a name (exact, or `prefix*`); exact names win, then
    /// the longest prefix.
    pub model_timeouts: Vec<ModelTimeouts>,
}

/// The connect / first-byte / total timeouts of calls for some GLM models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub total: Duration,
}

/// A `[zhipu.timeouts."pattern"]` table, with the section's values filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTimeouts {
    /// The model name, or a prefix when `prefix` is set (the pattern ended with `*`).
    pub name: String,
    pub prefix: bool,
    pub timeouts: Timeouts,
}

impl ZhipuConfig {
    /// The section's own timeouts.
    pub fn default_timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.connect_timeout,
            first_byte: self.first_byte_timeout,
            total: self.total_timeout,
        }
    }

    /// The timeouts of calls for GLM model `model`.
    pub fn timeouts_for(&self, model: &str) -> Timeouts {
        let exact = self
            .model_timeouts
            .iter()
            .find(|t| !t.prefix && t.name == model);
        let prefix = || {
            self.model_timeouts
                .iter()
                .filter(|t| t.prefix && model.starts_with(t.name.as_str()))
                .max_by_key(|t| t.name.len())
        };
        exact
            .or_else(prefix)
            .map_or_else(|| self.default_timeouts(), |t| t.timeouts)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTimeouts {
    connect_secs: Option<u64>,
    first_byte_secs: Option<u64>,
    total_secs: Option<u64>,
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
    max_attempts: Option<u32>,
    #[serde(default)]
    fallbacks: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    timeouts: BTreeMap<String, FileTimeouts>,
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
    let defaults = Timeouts {
        connect: secs("zhipu.connect_timeout_secs", file.connect_timeout_secs, 5)?,
        first_byte: secs(
            "zhipu.first_byte_timeout_secs",
            file.first_byte_timeout_secs,
            120,
        )?,
        total: secs("zhipu.total_timeout_secs", file.total_timeout_secs, 900)?,
    };
    Ok(ZhipuConfig {
        api_keys: keys.into_iter().map(Secret::new).collect(),
        base_url: base_url.trim_end_matches('/').to_owned(),
        auth,
        connect_timeout: defaults.connect,
        first_byte_timeout: defaults.first_byte,
        total_timeout: defaults.total,
        max_attempts: positive("zhipu.max_attempts", file.max_attempts.unwrap_or(3))?,
        fallbacks: fallbacks(&file.fallbacks)?,
        model_timeouts: model_timeouts(&file.timeouts, defaults)?,
        responses_base_url: None,
        stream_idle_timeout: Duration::from_secs(positive(
            "zhipu.stream_idle_timeout_secs",
            file.stream_idle_timeout_secs.unwrap_or(120),
        )?),
    })
}

fn secs(setting: &str, value: Option<u64>, default: u64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(positive(
        setting,
        value.unwrap_or(default),
    )?))
}

fn fallbacks(
    file: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
    for (model, next) in file {
        if model.is_empty() || next.iter().any(|m| m.is_empty() || m == model) {
            return Err(ConfigError::new(
                format!("zhipu.fallbacks.\"{model}\""),
                "must list other, non-empty model names",
            ));
        }
    }
    Ok(file.clone())
}

fn model_timeouts(
    file: &BTreeMap<String, FileTimeouts>,
    defaults: Timeouts,
) -> Result<Vec<ModelTimeouts>, ConfigError> {
    file.iter()
        .map(|(pattern, t)| {
            let setting = |field: &str| format!("zhipu.timeouts.\"{pattern}\".{field}");
            let (name, prefix) = match pattern.strip_suffix('*') {
                Some(prefix) => (prefix, true),
                None => (pattern.as_str(), false),
            };
            if name.contains('*') || (name.is_empty() && !prefix) {
                return Err(ConfigError::new(
                    setting("*"),
                    "a model name, or a prefix followed by `*`",
                ));
            }
            let or_default = |field: &str, value: Option<u64>, default: Duration| {
                value.map_or(Ok(default), |v| {
                    positive(&setting(field), v).map(Duration::from_secs)
                })
            };
            Ok(ModelTimeouts {
                name: name.to_owned(),
                prefix,
                timeouts: Timeouts {
                    connect: or_default("connect_secs", t.connect_secs, defaults.connect)?,
                    first_byte: or_default(
                        "first_byte_secs",
                        t.first_byte_secs,
                        defaults.first_byte,
                    )?,
                    total: or_default("total_secs", t.total_secs, defaults.total)?,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(toml: &str) -> Result<Config, ConfigError> {
        Config::from_toml(toml, &|_| None)
    }

    #[test]
    fn retries_fallbacks_and_model_timeouts_are_read() {
        let config = load(
            "[zhipu]\nmax_attempts = 4\nfirst_byte_timeout_secs = 30\n\
             [zhipu.fallbacks]\n\"glm-4.7\" = [\"glm-4.7-flash\"]\n\
             [zhipu.timeouts.\"glm-5*\"]\nfirst_byte_secs = 300\n\
             [zhipu.timeouts.\"glm-5-air\"]\ntotal_secs = 60\n",
        )
        .unwrap();
        let zhipu = &config.zhipu;
        assert_eq!(zhipu.max_attempts, 4);
        assert_eq!(zhipu.fallbacks["glm-4.7"], vec!["glm-4.7-flash".to_owned()]);
        let glm5 = zhipu.timeouts_for("glm-5.1");
        assert_eq!(glm5.first_byte, Duration::from_secs(300));
        assert_eq!(glm5.total, Duration::from_secs(900));
        let air = zhipu.timeouts_for("glm-5-air");
        assert_eq!(air.first_byte, Duration::from_secs(30));
        assert_eq!(air.total, Duration::from_secs(60));
        assert_eq!(zhipu.timeouts_for("glm-4.7"), zhipu.default_timeouts());
        let defaults = load("").unwrap().zhipu;
        assert_eq!(defaults.max_attempts, 3);
        assert!(defaults.fallbacks.is_empty() && defaults.model_timeouts.is_empty());
    }

    #[test]
    fn bad_retry_settings_are_refused() {
        for (toml, setting) in [
            ("[zhipu]\nmax_attempts = 0\n", "zhipu.max_attempts"),
            (
                "[zhipu.timeouts.\"glm*5\"]\ntotal_secs = 1\n",
                "zhipu.timeouts.\"glm*5\".*",
            ),
            (
                "[zhipu.timeouts.\"glm-5\"]\ntotal_secs = 0\n",
                "zhipu.timeouts.\"glm-5\".total_secs",
            ),
            (
                "[zhipu.fallbacks]\n\"glm-4.7\" = [\"glm-4.7\"]\n",
                "zhipu.fallbacks.\"glm-4.7\"",
            ),
        ] {
            assert_eq!(load(toml).unwrap_err().setting, setting, "{toml}");
        }
    }
}
