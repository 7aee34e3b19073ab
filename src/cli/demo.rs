//! `glm-gateway demo`: the real gateway in front of the built-in GLM emulator, with a SQLite
//! database in a temporary folder and a ready key, so a newcomer sees it answer with no Zhipu
//! account and no network.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use rand::distributions::{Alphanumeric, DistString};

use super::say;
use crate::app::{shutdown_signal, App, BuildOptions};
use crate::config::{AuthMode, Config, Secret};
use crate::emulator::{self, EmulatorConfig};
use crate::keys::admin::{create_key, CreateKey};

pub async fn run(mut config: Config, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let folder = tempfile::Builder::new()
        .prefix("glm-gateway-demo-")
        .tempdir()
        .context("cannot make a temporary folder")?;
    let mut rng = rand::thread_rng();
    let upstream_key = format!(
        "{}.{}",
        Alphanumeric.sample_string(&mut rng, 16),
        Alphanumeric.sample_string(&mut rng, 32)
    );
    let emulator_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot start the emulator")?;
    let emulator_addr = emulator_listener.local_addr()?;
    emulator::spawn(
        emulator_listener,
        EmulatorConfig {
            api_keys: vec![upstream_key.clone()],
            chunk_delay: Duration::from_millis(40),
        },
    );

    if let Some(listen) = listen {
        config.listen = listen;
    }
    config.database_url = format!("sqlite://{}", folder.path().join("demo.db").display()).into();
    config.usage.journal_dir = folder.path().join("journal");
    config.zhipu.api_keys = vec![Secret::new(upstream_key)];
    config.zhipu.base_url = format!("http://{emulator_addr}/api/paas/v4");
    config.zhipu.auth = AuthMode::Jwt;
    let database = config.database_url.expose().to_owned();

    let app = App::build(config, BuildOptions::default()).await?;
    let request = CreateKey {
        name: "demo".into(),
        team: "demo".into(),
        ..CreateKey::default()
    };
    let (created, key) = create_key(&app.state().db, request)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    app.state().keys.insert(key);
    print_banner(app.local_addr(), &database, &created.key);
    app.run_until(shutdown_signal()).await
}

fn print_banner(addr: SocketAddr, database: &str, key: &str) {
    let url = format!("http://{addr}");
    say(format_args!("glm-gateway demo: the gateway runs against a built-in GLM emulator (no Zhipu account, no network)."));
    say(format_args!("  listening on  {url}"));
    say(format_args!("  database      {database} (removed on exit)"));
    say(format_args!("  API key       {key}"));
    say(format_args!(""));
    say(format_args!("Try it with curl:"));
    say(format_args!(
        "  curl {url}/v1/chat/completions -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \
         -d '{{\"model\":\"gpt-4o\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello!\"}}],\"stream\":true}}'"
    ));
    say(format_args!(""));
    say(format_args!(
        "Or with the OpenAI Python SDK (pip install openai): paste these lines into python3"
    ));
    say(format_args!("from openai import OpenAI"));
    say(format_args!(
        "client = OpenAI(base_url=\"{url}/v1\", api_key=\"{key}\")"
    ));
    say(format_args!(
        "print(client.chat.completions.create(model=\"gpt-4o\", messages=[{{\"role\": \"user\", \"content\": \"Hello!\"}}]).choices[0].message.content)"
    ));
    say(format_args!(
        "print(client.responses.create(model=\"gpt-4o\", input=\"Hello from the Responses API!\").output_text)"
    ));
    say(format_args!(""));
    say(format_args!(
        "The emulator calls a tool when you name it, answers JSON in json_object mode, and takes \
         directives such as #slow 500 or #error 1302 (glm-gateway demo --help lists them)."
    ));
    say(format_args!(""));
    say(format_args!("Press Ctrl-C to stop."));
}
