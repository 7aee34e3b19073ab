//! Settings: an optional TOML file, then the environment on top, validated once at start into
//! typed values. A bad or missing setting is a `ConfigError` that names it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod emulation;
mod endpoints;
mod limits;
mod models;
mod responses;
mod secret;
mod server;

pub use emulation::{EmulationConfig, EmulationSwitches};
pub use endpoints::{EmbeddingsConfig, ImagesConfig};
pub use limits::{LimitStore, LimitsConfig, StoreErrorPolicy};
pub use models::{ModelMap, BUILTIN_MAP, COMMON_OPENAI_MODELS};
pub use responses::{derive_responses_base, ResponsesConfig};
pub use secret::Secret;

pub const DEFAULT_CONFIG_PATH: &str = "config/gateway.toml";
const DEFAULT_BASE_URL: &str = "https://open.bigmodel.cn/api/paas/v4";

/// The GLM models `/v1/models` lists besides the aliases, when the file names none.
const DEFAULT_CATALOGUE: &[&str] = &[
    "glm-5.1",
    "glm-5",
    "glm-5-turbo",
    "glm-4.7",
    "glm-4.7-flash",
    "glm-4.7-flashx",
    "glm-4.6",
    "glm-4.5-air",
    "glm-4.5-airx",
    "glm-4.5-flash",
    "glm-4-flash-250414",
    "glm-4-flashx-250414",
    "glm-5v-turbo",
    "glm-4.6v",
    "glm-4.6v-flash",
    "glm-4v-flash",
    "charglm-4",
    "emohaa",
    "embedding-3",
    "embedding-2",
    "cogview-4",
    "cogview-4-250304",
    "cogview-3-flash",
];

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
    pub database_url: String,
    pub admin_token: Option<Secret>,
    pub zhipu: ZhipuConfig,
    pub models: ModelMap,
    /// GLM models listed by `/v1/models` besides the aliases.
    pub catalogue: Vec<String>,
    pub server: ServerConfig,
    pub usage: UsageConfig,
    pub limits: LimitsConfig,
    /// Price entries from the file, on top of the built-in ones.
    pub prices: Vec<PriceEntry>,
    pub embeddings: EmbeddingsConfig,
    pub images: ImagesConfig,
    /// Keeping `json_schema` and forced `tool_choice` by rewriting and checking.
    pub emulation: EmulationConfig,
    pub responses: ResponsesConfig,
}

#[derive(Debug, Clone)]
pub struct UsageConfig {
    /// Without the ledger no usage is recorded (for measuring its cost; never in production).
    pub enabled: bool,
    /// The local append-only journal that rows pass through on their way to the database.
    pub journal_dir: PathBuf,
    /// The writer inserts this many rows at once, or fewer after `flush_interval`.
    pub batch_size: usize,
    pub flush_interval: Duration,
    /// Days of `usage_events` kept; older days are rolled up into `usage_rollups` and dropped.
    /// `None` keeps everything.
    pub retention_days: Option<u32>,
    /// Store prompt and completion text in each row (off: rows carry counts only).
    pub store_content: bool,
    /// How long a stream is still read after its client left, to learn the usage.
    pub drain_timeout: Duration,
    /// Rows held in memory while the journal cannot be written (a full disk).
    pub memory_rows: u64,
    /// What happens once `memory_rows` rows are held in memory.
    pub on_journal_full: OnJournalFull,
}

/// `[usage] on_journal_full`: with the journal unwritable and `memory_rows` rows in memory,
/// keep serving and lose (and count) rows, or refuse requests with 503 `ledger_unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnJournalFull {
    #[default]
    Serve,
    Refuse,
}

/// One price, in CNY, effective from `since` (UTC) until a later entry for the same model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    /// A GLM model name, or a `prefix*` pattern.
    pub model: String,
    #[serde(default)]
    pub prompt_per_1k: f64,
    #[serde(default)]
    pub completion_per_1k: f64,
    #[serde(default)]
    pub per_image: f64,
    pub since: chrono::NaiveDate,
}

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
    prices: Vec<PriceEntry>,
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
struct FileUsage {
    enabled: Option<bool>,
    journal_dir: Option<PathBuf>,
    batch_size: Option<usize>,
    flush_interval_ms: Option<u64>,
    retention_days: Option<u32>,
    store_content: Option<bool>,
    drain_timeout_secs: Option<u64>,
    memory_rows: Option<u64>,
    on_journal_full: Option<OnJournalFull>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileZhipu {
    api_keys: Option<Vec<String>>,
    base_url: Option<String>,
    auth: Option<AuthMode>,
    connect_timeout_secs: Option<u64>,
    first_byte_timeout_secs: Option<u64>,
    total_timeout_secs: Option<u64>,
    stream_idle_timeout_secs: Option<u64>,
    models: Option<Vec<String>>,
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
    /// Reads the file (explicit `path`, else `GLM_GATEWAY_CONFIG`, else `config/gateway.toml`
    /// when it exists), applies the environment and validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(path, &|name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    pub fn load_with(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let explicit = path
            .map(Path::to_path_buf)
            .or_else(|| env("GLM_GATEWAY_CONFIG").map(PathBuf::from));
        let file = match explicit {
            Some(path) => read_file(&path)?,
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                read_file(Path::new(DEFAULT_CONFIG_PATH))?
            }
            None => FileConfig::default(),
        };
        Self::from_parts(file, env)
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
            database_url,
            admin_token,
            zhipu,
            models: ModelMap::new(file.models)
                .map_err(|reason| ConfigError::new("models", reason))?,
            catalogue: file
                .zhipu
                .models
                .unwrap_or_else(|| DEFAULT_CATALOGUE.iter().map(|m| (*m).to_owned()).collect()),
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

fn zhipu_config(
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

fn usage_config(
    file: FileUsage,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<UsageConfig, ConfigError> {
    let journal_dir = env("GLM_GATEWAY_JOURNAL_DIR")
        .map(PathBuf::from)
        .or(file.journal_dir)
        .unwrap_or_else(|| PathBuf::from("glm-gateway-journal"));
    Ok(UsageConfig {
        enabled: file.enabled.unwrap_or(true),
        journal_dir,
        batch_size: positive("usage.batch_size", file.batch_size.unwrap_or(500))?,
        flush_interval: Duration::from_millis(positive(
            "usage.flush_interval_ms",
            file.flush_interval_ms.unwrap_or(200),
        )?),
        retention_days: match file.retention_days {
            Some(0) => None,
            Some(days) => Some(days),
            None => Some(180),
        },
        store_content: file.store_content.unwrap_or(false),
        drain_timeout: Duration::from_secs(file.drain_timeout_secs.unwrap_or(30)),
        memory_rows: positive("usage.memory_rows", file.memory_rows.unwrap_or(10_000))?,
        on_journal_full: file.on_journal_full.unwrap_or_default(),
    })
}

fn validate_prices(prices: Vec<PriceEntry>) -> Result<Vec<PriceEntry>, ConfigError> {
    for price in &prices {
        let amounts = [
            price.prompt_per_1k,
            price.completion_per_1k,
            price.per_image,
        ];
        if price.model.is_empty() || amounts.iter().any(|a| !a.is_finite() || *a < 0.0) {
            return Err(ConfigError::new(
                format!("prices ({})", price.model),
                "needs a model name and non-negative amounts",
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

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "config (--config, GLM_GATEWAY_CONFIG)",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    parse_file(&text, &path.display().to_string())
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
