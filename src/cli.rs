//! The command line: `serve`, `demo`, `migrate`, `keys`, `emulator`, `healthcheck`. Exit status 2 for a bad
//! setting or usage, 1 for any other failure.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::{Parser, Subcommand};

use crate::app::{shutdown_signal, App, BuildOptions};
use crate::config::{Config, ConfigError};
use crate::keys::admin::{create_key, CreateKey, KeyView};
use crate::keys::update::UpdateKey;
use crate::store::{parse_day, Db, UsageGroup};
use crate::telemetry::LogFormat;

mod demo;
mod healthcheck;
mod limits;
mod prices;

#[derive(Debug, Parser)]
#[command(
    name = "glm-gateway",
    version,
    about = "An OpenAI-compatible gateway for Zhipu's GLM models"
)]
pub struct Cli {
    /// TOML configuration file (default: $GLM_GATEWAY_CONFIG, else config/gateway.toml if present).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// How log lines are written to stderr: `text`, or `json` (one object a line).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "GLM_GATEWAY_LOG_FORMAT",
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (migrations are applied at start).
    Serve {
        /// Do not apply database migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Run the gateway against a built-in GLM emulator with a throwaway SQLite database.
    #[command(after_help = crate::emulator::DIRECTIVES_HELP)]
    Demo {
        /// Address to listen on (default: the `listen` setting).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Create, list and revoke downstream API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Set and list team budgets.
    Teams {
        #[command(subcommand)]
        command: limits::TeamsCommand,
    },
    /// Print a usage summary from the ledger.
    Usage {
        /// Group by team, key, model or endpoint.
        #[arg(long, default_value = "team")]
        by: String,
        /// First day (YYYY-MM-DD, UTC) to include.
        #[arg(long)]
        since: Option<String>,
        /// Last day (YYYY-MM-DD, UTC) to include.
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print the prices in force today (the catalogue's, with `[[prices]]` on top).
    Prices {
        /// Only this GLM model.
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run only the built-in GLM emulator (an upstream for local tests).
    #[command(after_help = crate::emulator::DIRECTIVES_HELP)]
    Emulator {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// A Zhipu-style `id.secret` key the emulator accepts (repeatable).
        #[arg(long = "api-key", required = true)]
        api_keys: Vec<String>,
        /// Delay between streamed chunks, in milliseconds.
        #[arg(long, default_value_t = 20)]
        chunk_delay_ms: u64,
    },
    /// Probe a running gateway: exit 0 when it answers 2xx within 2 s, else 1.
    Healthcheck {
        /// The URL to GET (default: http://<listen>/healthz, or /readyz with --ready).
        #[arg(long)]
        url: Option<String>,
        /// Probe /readyz instead of /healthz.
        #[arg(long, conflicts_with = "url")]
        ready: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print it (the only time the secret is shown).
    Create {
        #[command(flatten)]
        key: CreateKey,
        /// Print the key as JSON, as `POST /admin/keys` answers.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id; it is refused from then on.
    Revoke { id: String },
    /// Change a key's limits; a flag given without a value clears that limit.
    Update {
        id: String,
        #[command(flatten)]
        change: UpdateKey,
    },
}

/// Parses the command line, runs the command and maps its outcome to an exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Healthcheck { url, ready } = cli.command {
        return healthcheck::run(cli.config.as_deref(), url, ready);
    }
    crate::telemetry::init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::Error::from(error)),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    if let Some(config_error) = error.downcast_ref::<ConfigError>() {
        eprintln!("glm-gateway: {config_error}");
        return ExitCode::from(2);
    }
    eprintln!("glm-gateway: error: {error:#}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { no_migrate } => serve(config, no_migrate).await,
        Command::Demo { listen } => demo::run(config, listen).await,
        Command::Migrate => {
            open_db(&config).await?;
            say(format_args!(
                "migrations applied to {}",
                config.database_url
            ));
            Ok(())
        }
        Command::Keys { command } => keys(&config, command).await,
        Command::Teams { command } => limits::teams(&config, command).await,
        Command::Usage {
            by,
            since,
            until,
            json,
        } => usage(&config, &by, since, until, json).await,
        Command::Prices { model, json } => prices::run(&config, model.as_deref(), json),
        // Handled in `main`, before logging and the runtime start.
        Command::Healthcheck { .. } => Ok(()),
        Command::Emulator {
            listen,
            api_keys,
            chunk_delay_ms,
        } => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let addr = listener.local_addr()?;
            let config = crate::emulator::EmulatorConfig {
                api_keys,
                chunk_delay: std::time::Duration::from_millis(chunk_delay_ms),
            };
            crate::emulator::spawn(listener, config);
            say(format_args!(
                "glm emulator listening on http://{addr}/api/paas/v4"
            ));
            shutdown_signal().await;
            Ok(())
        }
    }
}

async fn serve(config: Config, no_migrate: bool) -> anyhow::Result<()> {
    if config.zhipu.api_keys.is_empty() {
        return Err(ConfigError::new(
            "zhipu.api_keys (ZHIPUAI_API_KEY)",
            "a Zhipu API key `<id>.<secret>` is required to serve; `glm-gateway demo` runs without one",
        )
        .into());
    }
    let app = App::build(
        config,
        BuildOptions {
            migrate: !no_migrate,
        },
    )
    .await?;
    say(format_args!(
        "glm-gateway listening on http://{}",
        app.local_addr()
    ));
    app.run_until(shutdown_signal()).await
}

async fn open_db(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(config.database_url.expose())
        .await
        .context("cannot open the database (DATABASE_URL)")?;
    db.migrate()
        .await
        .context("cannot apply the database migrations")?;
    Ok(db)
}

async fn keys(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let db = open_db(config).await?;
    match command {
        KeysCommand::Create { key: request, json } => {
            let (created, _) = create_key(&db, request)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            if json {
                say(format_args!("{}", serde_json::to_string_pretty(&created)?));
            } else {
                say(format_args!(
                    "created key {} for team {}:\n{}",
                    created.view.id, created.view.team, created.key
                ));
                say(format_args!("(this is the only time the key is shown)"));
            }
        }
        KeysCommand::List { json } => {
            let records = db.list_keys().await?;
            let views: Vec<KeyView> = records.iter().map(KeyView::from).collect();
            if json {
                say(format_args!("{}", serde_json::to_string_pretty(&views)?));
            } else {
                say(format_args!(
                    "{:<14} {:<20} {:<16} {:<9} MODELS",
                    "ID", "NAME", "TEAM", "STATUS"
                ));
                for view in &views {
                    let status = if view.revoked_at.is_some() {
                        "revoked"
                    } else if view.expires_at.is_some_and(|at| at <= Utc::now()) {
                        "expired"
                    } else {
                        "active"
                    };
                    let models = view
                        .models
                        .as_ref()
                        .map_or_else(|| "*".to_owned(), |m| m.join(","));
                    say(format_args!(
                        "{:<14} {:<20} {:<16} {:<9} {models}",
                        view.id, view.name, view.team, status
                    ));
                }
            }
        }
        KeysCommand::Revoke { id } => match db.revoke_key(&id).await? {
            Some(_) => say(format_args!("revoked key {id}")),
            None => anyhow::bail!("no key has the id `{id}`"),
        },
        KeysCommand::Update { id, change } => limits::update(&db, &id, change).await?,
    }
    db.close().await;
    Ok(())
}

async fn usage(
    config: &Config,
    by: &str,
    since: Option<String>,
    until: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let group: UsageGroup = by
        .parse()
        .map_err(|_| anyhow::anyhow!("--by must be team, key, model or endpoint"))?;
    let since = parse_day("since", since.as_deref()).map_err(anyhow::Error::msg)?;
    let until = parse_day("until", until.as_deref()).map_err(anyhow::Error::msg)?;
    let db = open_db(config).await?;
    let rows = db.usage_summary(group, since, until).await?;
    if json {
        say(format_args!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "data": rows }))?
        ));
    } else {
        let rows = serde_json::to_value(&rows)?;
        let label = match by {
            "key" => "api_key_id",
            "model" => "model",
            _ => "team",
        };
        say(format_args!(
            "{:<24} {:>10} {:>14} {:>14} {:>14} {:>14}",
            label.to_uppercase(),
            "REQUESTS",
            "PROMPT",
            "COMPLETION",
            "TOTAL",
            "COST (CNY)"
        ));
        for row in rows.as_array().into_iter().flatten() {
            let number = |field: &str| row[field].as_i64().unwrap_or(0);
            let cost = row["cost"]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |c| format!("{c:.4}"));
            say(format_args!(
                "{:<24} {:>10} {:>14} {:>14} {:>14} {:>14}",
                row[label].as_str().unwrap_or("-"),
                number("requests"),
                number("prompt_tokens"),
                number("completion_tokens"),
                number("total_tokens"),
                cost
            ));
        }
    }
    db.close().await;
    Ok(())
}

/// Writes one line to stdout, flushed, for people and for scripts that wait on it.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
