//! Client-given text cannot forge log lines: the real binary's stderr after requests that log
//! a team, a key id and a model holding CR/LF, ESC and NUL.

use std::process::Stdio;
use std::time::Duration;

use glm_gateway::store::Db;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::{ADMIN_TOKEN, UPSTREAM_KEY};

const FORGED_TEAM: &str = "t\r\nFAKE ERROR line\x1b[31m\0";
const FORGED_TEAM_IN_PATH: &str = "t%0D%0AFAKE%20ERROR%20line%1B%5B31m%00";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_client_text_never_reach_the_log_raw() {
    let folder = tempfile::tempdir().unwrap();
    let upstream = crate::helpers::spawn_emulator(Duration::from_millis(1)).await;
    // The admin API refuses such a team, so the row is written the way an old or hand-edited
    // database would hold it.
    let database_url = format!("sqlite://{}", folder.path().join("gateway.db").display());
    let db = Db::connect(&database_url).await.unwrap();
    db.migrate().await.unwrap();
    let generated = glm_gateway::keys::generate();
    db.insert_key(&crate::helpers::plain_key(
        &generated.id,
        "forged\r\nFAKE name",
        FORGED_TEAM,
        &generated.secret_hash,
    ))
    .await
    .unwrap();
    db.close().await;
    let config = folder.path().join("gateway.toml");
    std::fs::write(&config, "").unwrap();

    let mut gateway = Command::new(env!("CARGO_BIN_EXE_glm-gateway"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("DATABASE_URL", &database_url)
        .env("ZHIPUAI_API_KEY", UPSTREAM_KEY)
        .env("ZHIPUAI_BASE_URL", upstream)
        .env("GLM_GATEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("GLM_GATEWAY_LISTEN", "127.0.0.1:0")
        .env("GLM_GATEWAY_JOURNAL_DIR", folder.path().join("journal"))
        .env("RUST_LOG", "glm_gateway=debug,warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(gateway.stdout.take().unwrap()).lines();
    let mut url = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(found) = line.strip_prefix("glm-gateway listening on ") {
            url = Some(found.to_owned());
            break;
        }
    }
    let url = url.expect("the gateway did not start");
    let http = reqwest::Client::new();

    let chat = http
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(&generated.full)
        .json(&json!({
            "model": "glm-4.7\r\nFAKE ERROR model\u{1b}[31m\u{0}",
            "messages": [{"role": "user", "content": "Hello"}]
        }))
        .send()
        .await
        .unwrap();
    assert!(chat.status().as_u16() < 500, "{}", chat.status());
    let team = http
        .put(format!("{url}/admin/teams/{FORGED_TEAM_IN_PATH}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"token_budget": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(team.status(), 200);
    let revoked = http
        .delete(format!("{url}/admin/keys/{}", generated.id))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);

    gateway.start_kill().unwrap();
    let output = gateway.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("key revoked"), "{log}");
    assert!(log.contains("team budgets set"), "{log}");
    assert!(log.contains(r"FAKE ERROR line\u{1b}"), "{log}");
    for line in log.lines() {
        assert!(
            !line.trim_start().starts_with("FAKE"),
            "a forged line: {line:?}"
        );
    }
    assert!(!output.stderr.contains(&0x1b), "a raw ESC in: {log}");
    assert!(!output.stderr.contains(&0), "a raw NUL in: {log}");
    assert!(!output.stderr.contains(&b'\r'), "a raw CR in: {log}");
}
