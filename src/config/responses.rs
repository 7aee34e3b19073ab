//! The `[responses]` section: where Zhipu's Response API lives (its own base, `/api/v1`, not
//! chat's `/api/paas/v4`), whether `store` defaults on, and who may see a stored response.

use serde::Deserialize;

use super::ConfigError;

/// Zhipu's Response API when the chat base gives no better guess.
pub const DEFAULT_RESPONSES_BASE_URL: &str = "https://open.bigmodel.cn/api/v1";

#[derive(Debug, Clone)]
pub struct ResponsesConfig {
    /// `store` when the client does not say: true, as OpenAI (Zhipu's own default is false).
    pub store_default: bool,
    /// A stored response is visible to every key of the team that created it (else only to
    /// the key that created it).
    pub share_within_team: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileResponses {
    base_url: Option<String>,
    store_default: Option<bool>,
    share_within_team: Option<bool>,
}

/// The section, and the explicit base URL if one was set (it goes with the upstream settings).
pub(super) fn responses_config(
    file: FileResponses,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(ResponsesConfig, Option<String>), ConfigError> {
    let flag = |name: &str, file: Option<bool>| -> Result<bool, ConfigError> {
        let setting = format!(
            "responses.{name} (GLM_GATEWAY_RESPONSES__{})",
            name.to_uppercase()
        );
        match env(&format!("GLM_GATEWAY_RESPONSES__{}", name.to_uppercase())) {
            Some(value) => value
                .parse()
                .map_err(|_| ConfigError::new(setting, format!("`{value}` is not true or false"))),
            None => Ok(file.unwrap_or(true)),
        }
    };
    let base_url = env("GLM_GATEWAY_RESPONSES__BASE_URL").or(file.base_url);
    if let Some(url) = &base_url {
        let scheme = url::Url::parse(url).map(|u| u.scheme().to_owned());
        if !matches!(scheme.as_deref(), Ok("http" | "https")) {
            return Err(ConfigError::new(
                "responses.base_url (GLM_GATEWAY_RESPONSES__BASE_URL)",
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
    }
    let config = ResponsesConfig {
        store_default: flag("store_default", file.store_default)?,
        share_within_team: flag("share_within_team", file.share_within_team)?,
    };
    Ok((config, base_url.map(|u| u.trim_end_matches('/').to_owned())))
}

/// The Response API base next to a chat base: `…/paas/v4` becomes `…/v1` (so the emulator's
/// `http://host/api/paas/v4` gives `http://host/api/v1`); any other shape gives Zhipu's own.
pub fn derive_responses_base(chat_base: &str) -> String {
    chat_base
        .trim_end_matches('/')
        .strip_suffix("/paas/v4")
        .map_or_else(
            || DEFAULT_RESPONSES_BASE_URL.to_owned(),
            |root| format!("{root}/v1"),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_derived_from_the_chat_base() {
        assert_eq!(
            derive_responses_base("https://open.bigmodel.cn/api/paas/v4"),
            DEFAULT_RESPONSES_BASE_URL
        );
        assert_eq!(
            derive_responses_base("http://127.0.0.1:9/api/paas/v4/"),
            "http://127.0.0.1:9/api/v1"
        );
        assert_eq!(
            derive_responses_base("https://proxy.example/glm"),
            DEFAULT_RESPONSES_BASE_URL
        );
    }

    #[test]
    fn flags_default_on_and_the_environment_wins() {
        let file: FileResponses =
            toml::from_str("store_default = false\nbase_url = \"http://h/api/v1/\"").unwrap();
        let env = |name: &str| {
            (name == "GLM_GATEWAY_RESPONSES__SHARE_WITHIN_TEAM").then(|| "false".to_owned())
        };
        let (config, base) = responses_config(file, &env).unwrap();
        assert!(!config.store_default && !config.share_within_team);
        assert_eq!(base.as_deref(), Some("http://h/api/v1"));
        let (config, base) = responses_config(FileResponses::default(), &|_| None).unwrap();
        assert!(config.store_default && config.share_within_team && base.is_none());
        let bad: FileResponses = toml::from_str("base_url = \"ftp://x\"").unwrap();
        assert!(responses_config(bad, &|_| None).is_err());
    }
}
