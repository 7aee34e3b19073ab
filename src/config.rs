//! Settings: an optional TOML file, then the environment on top, validated once at start into
//! typed values. A bad or missing setting is a `ConfigError` that names it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

use crate::catalogue::{Catalogue, ConfiguredPrice, PriceBook};

mod database_url;
mod emulation;
mod endpoints;
mod limits;
mod models;
mod responses;
mod secret;
mod server;
mod usage;
mod zhipu;

pub use database_url::DatabaseUrl;
pub use emulation::{EmulationConfig, EmulationSwitches};
pub use endpoints::{EmbeddingsConfig, ImagesConfig};
pub use limits::{LimitStore, LimitsConfig, StoreErrorPolicy};
pub use models::ModelMap;
pub use responses::{derive_responses_base, ResponsesConfig};
pub use secret::Secret;
pub use usage::{OnJournalFull, UsageConfig};
pub use zhipu::{AuthMode, ModelTimeouts, Timeouts, ZhipuConfig};

use usage::{usage_config, FileUsage};
use zhipu::{zhipu_config, FileZhipu};

pub const DEFAULT_CONFIG_PATH: &str = "config/gateway.toml";
/// Settings from the environment: `GLM_GATEWAY_<SECTION>__<KEY>`.
const ENV_PREFIX: &str = "GLM_GATEWAY_";
const DEFAULT_BASE_URL: &str = "https://open.bigmodel.cn/api/paas/v4";

#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{setting}`: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: DatabaseUrl,
    pub admin_token: Option<Secret>,
    pub zhipu: ZhipuConfig,
    pub models: ModelMap,
    /// GLM models listed by `/v1/models` besides the aliases (`[zhipu] models`, else the
    /// catalogue's current models).
    pub listed_models: Vec<String>,
    pub server: ServerConfig,
    pub usage: UsageConfig,
    pub limits: LimitsConfig,
    /// `[[prices]]`: on top of the catalogue's prices.
    pub prices: Vec<ConfiguredPrice>,
    pub embeddings: EmbeddingsConfig,
    pub images: ImagesConfig,
    /// Keeping `json_schema` and forced `tool_choice` by rewriting and checking.
    pub emulation: EmulationConfig,
    pub responses: ResponsesConfig,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub max_body_bytes: usize,
    /// How long shutdown waits for open streams to finish.
    pub shutdown_grace: Duration,
    /// How often the key cache reloads keys from the database; bounds how long a revoked key
    /// keeps working.
    pub key_refresh: Duration,
    /// A connection must send a request's whole header within this.
    pub header_timeout: Duration,
    /// A request's body must arrive within this (else 408).
    pub body_timeout: Duration,
    /// A keep-alive connection with no request open is closed after this.
    pub idle_timeout: Duration,
    /// Open client connections; past this the listener waits before accepting more.
    pub max_connections: usize,
    /// Requests being handled at once; past this, 503 with `retry-after`.
    pub max_in_flight: usize,
    /// Bytes all request bodies being read may take together; past this, 503.
    pub max_buffered_body_bytes: usize,
    /// The cap on one SSE line or event from the upstream.
    pub max_sse_event_bytes: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<String>,
    admin_token: Option<String>,
    #[serde(default)]
    zhipu: FileZhipu,
    #[serde(default)]
    models: BTreeMap<String, String>,
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    usage: FileUsage,
    #[serde(default)]
    limits: limits::FileLimits,
    #[serde(default)]
    prices: Vec<ConfiguredPrice>,
    #[serde(default)]
    embeddings: endpoints::FileEmbeddings,
    #[serde(default)]
    images: endpoints::FileImages,
    #[serde(default)]
    emulation: emulation::FileEmulation,
    #[serde(default)]
    responses: responses::FileResponses,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    max_body_bytes: Option<usize>,
    shutdown_grace_secs: Option<u64>,
    key_refresh_ms: Option<u64>,
    header_timeout_ms: Option<u64>,
    body_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_in_flight: Option<usize>,
    max_buffered_body_bytes: Option<usize>,
    max_sse_event_bytes: Option<usize>,
}

impl Config {
    /// The prices rows are charged by: the catalogue's, with `[[prices]]` on top.
    pub fn price_book(&self) -> PriceBook {
        PriceBook::new(Catalogue::builtin().prices(), &self.prices)
    }

    /// Reads the file (explicit `path`, else `GLM_GATEWAY_CONFIG`, else `config/gateway.toml`
    /// when it exists), applies the environment and validates.
    /// Every `[section] key` can also come from `GLM_GATEWAY_<SECTION>__<KEY>` (nested tables
    /// with more `__`), on top of the file.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let sections = Env::prefixed(ENV_PREFIX)
            .filter(|key| key.as_str().contains("__"))
            .split("__");
        Self::from_parts(read_layers(path, &env, Some(sections))?, &env)
    }

    /// `load` with the named variables from `env`, and no `GLM_GATEWAY_<SECTION>__<KEY>` layer.
    pub fn load_with(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::from_parts(read_layers(path, env, None)?, env)
    }

    /// Parses a TOML document as the file would be, for tests and the demo.
    pub fn from_toml(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::from_parts(parse_file(text, "config")?, env)
    }

    fn from_parts(
        file: FileConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Catalogue::check_builtin().map_err(|reason| ConfigError::new("model catalogue", reason))?;
        let listen_text = env("GLM_GATEWAY_LISTEN")
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen_text.parse().map_err(|_| {
            ConfigError::new(
                "listen (GLM_GATEWAY_LISTEN)",
                format!("`{listen_text}` is not a host:port address"),
            )
        })?;
        let database_url = env("DATABASE_URL")
            .or(file.database_url)
            .unwrap_or_else(|| "sqlite://glm-gateway.db".into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "database_url (DATABASE_URL)",
                "must start with sqlite:// or postgres://",
            ));
        }
        let admin_token = env("GLM_GATEWAY_ADMIN_TOKEN")
            .or(file.admin_token)
            .map(Secret::new);
        if admin_token.as_ref().is_some_and(|t| t.expose().len() < 8) {
            return Err(ConfigError::new(
                "admin_token (GLM_GATEWAY_ADMIN_TOKEN)",
                "must be at least 8 characters",
            ));
        }
        let (responses, responses_base_url) = responses::responses_config(file.responses, env)?;
        let mut zhipu = zhipu_config(file.zhipu.api_keys.clone(), &file.zhipu, env)?;
        zhipu.responses_base_url = responses_base_url;
        Ok(Self {
            listen,
            database_url: DatabaseUrl::new(database_url),
            admin_token,
            zhipu,
            models: ModelMap::new(file.models)
                .map_err(|reason| ConfigError::new("models", reason))?,
            listed_models: file
                .zhipu
                .models
                .unwrap_or_else(|| Catalogue::builtin().listed().map(str::to_owned).collect()),
            server: server::server_config(&file.server)?,
            usage: usage_config(file.usage, env)?,
            limits: limits::limits_config(file.limits, env)?,
            prices: validate_prices(file.prices)?,
            embeddings: endpoints::embeddings_config(file.embeddings)?,
            images: endpoints::images_config(file.images)?,
            emulation: emulation::emulation_config(file.emulation)?,
            responses,
        })
    }
}

fn validate_prices(prices: Vec<ConfiguredPrice>) -> Result<Vec<ConfiguredPrice>, ConfigError> {
    for price in &prices {
        if let Err(reason) = price.price() {
            return Err(ConfigError::new(
                format!("prices ({})", price.model),
                reason,
            ));
        }
    }
    Ok(prices)
}

fn positive<T: PartialOrd + Default>(setting: &str, value: T) -> Result<T, ConfigError> {
    if value > T::default() {
        Ok(value)
    } else {
        Err(ConfigError::new(setting, "must be greater than 0"))
    }
}

/// The file (`path`, else `GLM_GATEWAY_CONFIG`, else the default path when it exists) and,
/// on top, the `GLM_GATEWAY_<SECTION>__<KEY>` variables.
fn read_layers(
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    sections: Option<Env>,
) -> Result<FileConfig, ConfigError> {
    let explicit = path
        .map(Path::to_path_buf)
        .or_else(|| env("GLM_GATEWAY_CONFIG").map(PathBuf::from));
    let path = explicit.or_else(|| {
        let default = PathBuf::from(DEFAULT_CONFIG_PATH);
        default.exists().then_some(default)
    });
    let (text, origin) = match &path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    "config (--config, GLM_GATEWAY_CONFIG)",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            (text, path.display().to_string())
        }
        None => (String::new(), "config".to_owned()),
    };
    let Some(sections) = sections else {
        return parse_file(&text, &origin);
    };
    // The file alone first, so its own mistakes are reported as before.
    parse_file(&text, &origin)?;
    Figment::from(Toml::string(&text))
        .merge(sections)
        .extract()
        .map_err(|e| {
            let setting = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .map_or_else(|| origin.clone(), |m| m.name.to_string());
            ConfigError::new(format!("{setting} (from {source})"), e.kind.to_string())
        })
}

fn parse_file(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let reason = e.message().to_owned();
        let setting = reason
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            .map_or_else(
                || format!("config file {origin}"),
                |field| format!("{field} (in {origin})"),
            );
        ConfigError::new(setting, reason)
    })
}

#[cfg(test)]
mod tests;
