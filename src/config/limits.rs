//! `[limits]`: where the shared limit counters live and how the gateway behaves when they
//! cannot be reached.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitStore {
    /// The gateway's own database: shared by every replica on Postgres, no extra server.
    #[serde(alias = "postgres", alias = "sqlite")]
    Database,
    /// A Redis server (`redis_url`).
    Redis,
    /// This process only: for a single gateway without persistence.
    Memory,
}

/// What a request gets when the counter store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreErrorPolicy {
    /// Serve it unchecked (a warning is logged and a metric counted).
    Open,
    /// Refuse it with 503.
    Closed,
}

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Off: nothing is counted or refused (for measuring the check's cost).
    pub enabled: bool,
    pub store: LimitStore,
    pub redis_url: Option<String>,
    /// Length of the fixed window `rpm` and `tpm` are counted in.
    pub window: Duration,
    /// Completion tokens reserved for a request that sets no `max_tokens`.
    pub default_max_tokens: i64,
    /// How long a reservation counts when its request never settles (a crashed replica).
    pub reservation_ttl: Duration,
    pub on_store_error: StoreErrorPolicy,
    /// The share of a key's `rpm` and `tpm` a replica takes from the store at once and spends
    /// locally; 0 sends every request to the store.
    pub lease_fraction: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLimits {
    enabled: Option<bool>,
    store: Option<LimitStore>,
    redis_url: Option<String>,
    window_secs: Option<u64>,
    default_max_tokens: Option<i64>,
    reservation_ttl_secs: Option<u64>,
    on_store_error: Option<StoreErrorPolicy>,
    lease_fraction: Option<f64>,
}

pub(super) fn limits_config(
    file: FileLimits,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LimitsConfig, ConfigError> {
    let store = match env("GLM_GATEWAY_LIMITS__STORE") {
        Some(text) => parse_word("limits.store (GLM_GATEWAY_LIMITS__STORE)", &text)?,
        None => file.store.unwrap_or(LimitStore::Database),
    };
    let on_store_error = match env("GLM_GATEWAY_LIMITS__ON_STORE_ERROR") {
        Some(text) => parse_word(
            "limits.on_store_error (GLM_GATEWAY_LIMITS__ON_STORE_ERROR)",
            &text,
        )?,
        None => file.on_store_error.unwrap_or(StoreErrorPolicy::Open),
    };
    let redis_url = env("GLM_GATEWAY_LIMITS__REDIS_URL").or(file.redis_url);
    if store == LimitStore::Redis
        && !redis_url
            .as_deref()
            .is_some_and(|url| url.starts_with("redis://") || url.starts_with("rediss://"))
    {
        return Err(ConfigError::new(
            "limits.redis_url (GLM_GATEWAY_LIMITS__REDIS_URL)",
            "store = \"redis\" needs a redis:// or rediss:// URL",
        ));
    }
    let window_secs = file.window_secs.unwrap_or(60);
    if !(1..=3600).contains(&window_secs) {
        return Err(ConfigError::new(
            "limits.window_secs",
            "must be between 1 and 3600",
        ));
    }
    let default_max_tokens = file.default_max_tokens.unwrap_or(1024);
    if default_max_tokens < 0 {
        return Err(ConfigError::new(
            "limits.default_max_tokens",
            "must not be negative",
        ));
    }
    let ttl = file.reservation_ttl_secs.unwrap_or(960);
    if ttl == 0 {
        return Err(ConfigError::new(
            "limits.reservation_ttl_secs",
            "must be greater than 0",
        ));
    }
    let lease_fraction = file.lease_fraction.unwrap_or(0.05);
    if !(0.0..=0.5).contains(&lease_fraction) {
        return Err(ConfigError::new(
            "limits.lease_fraction",
            "must be between 0 and 0.5",
        ));
    }
    Ok(LimitsConfig {
        enabled: file.enabled.unwrap_or(true),
        store,
        redis_url,
        window: Duration::from_secs(window_secs),
        default_max_tokens,
        reservation_ttl: Duration::from_secs(ttl),
        on_store_error,
        lease_fraction,
    })
}

fn parse_word<T: for<'de> Deserialize<'de>>(setting: &str, text: &str) -> Result<T, ConfigError> {
    T::deserialize(
        serde::de::value::StrDeserializer::<serde::de::value::Error>::new(
            &text.to_ascii_lowercase(),
        ),
    )
    .map_err(|_| {
        ConfigError::new(
            setting,
            format!("`{text}` is not one of the accepted values"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    fn limits_default_to_the_database_failing_open() {
        let config = Config::from_toml("", &|_| None).unwrap();
        assert_eq!(config.limits.store, LimitStore::Database);
        assert_eq!(config.limits.on_store_error, StoreErrorPolicy::Open);
        assert_eq!(config.limits.window, Duration::from_secs(60));
        assert_eq!(config.limits.default_max_tokens, 1024);
    }

    #[test]
    fn redis_needs_a_url_and_the_environment_wins() {
        let err = Config::from_toml("[limits]\nstore = \"redis\"", &|_| None).unwrap_err();
        assert!(err.setting.starts_with("limits.redis_url"), "{err}");
        let env = |name: &str| match name {
            "GLM_GATEWAY_LIMITS__STORE" => Some("Redis".to_owned()),
            "GLM_GATEWAY_LIMITS__REDIS_URL" => Some("redis://127.0.0.1:6379".to_owned()),
            "GLM_GATEWAY_LIMITS__ON_STORE_ERROR" => Some("closed".to_owned()),
            _ => None,
        };
        let config = Config::from_toml("[limits]\nstore = \"postgres\"", &env).unwrap();
        assert_eq!(config.limits.store, LimitStore::Redis);
        assert_eq!(config.limits.on_store_error, StoreErrorPolicy::Closed);
        let err = Config::from_toml("[limits]\nwindow = 5", &|_| None).unwrap_err();
        assert!(err.setting.starts_with("window"), "{err}");
        assert!(Config::from_toml("[limits]\non_store_error = \"maybe\"", &|_| None).is_err());
    }
}
