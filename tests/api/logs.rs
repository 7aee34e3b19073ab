//! The real binary's log. Client-given text cannot forge text lines (a team, a key id and a
//! model holding CR/LF, ESC and NUL); JSON lines parse, carry the request id, give one access
//! line per request, warn once per model without a price, and hold no secret.

use std::process::Stdio;
use std::time::Duration;

use glm_gateway::store::Db;
use serde_json::{json, Value};

use crate::faults::{create_key_at, gateway_env, start_gateway_with};
use crate::helpers::{request_id, ADMIN_TOKEN, UPSTREAM_KEY};

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

    let mut env = gateway_env(&database_url, upstream, &folder.path().join("journal"));
    env.push(("RUST_LOG", "glm_gateway=debug,warn".to_owned()));
    let (gateway, url) = start_gateway_with(&[], &env, &config, Stdio::piped()).await;
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

    let mut gateway = gateway;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_parse_carry_request_ids_give_one_access_line_per_request_and_hold_no_secret() {
    let folder = tempfile::tempdir().unwrap();
    let upstream = crate::helpers::spawn_emulator(Duration::from_millis(1)).await;
    let config = folder.path().join("gateway.toml");
    std::fs::write(&config, "").unwrap();
    let database_url = format!("sqlite://{}", folder.path().join("gateway.db").display());
    let mut env = gateway_env(&database_url, upstream, &folder.path().join("journal"));
    env.push(("RUST_LOG", "glm_gateway=debug,warn".to_owned()));
    let args = ["--log-format", "json"];
    let (mut gateway, url) = start_gateway_with(&args, &env, &config, Stdio::piped()).await;
    let http = reqwest::Client::new();
    let keys = [
        create_key_at(&url, "alpha").await,
        create_key_at(&url, "beta").await,
    ];
    let chat = |content: &str, stream: bool| {
        json!({"model": "gpt-4o", "stream": stream,
               "messages": [{"role": "user", "content": content}]})
    };
    let embed = json!({"model": "text-embedding-3-small", "input": ["a", "b"]});
    // glm-4.6 is on no price list.
    let unpriced = |stream: bool| {
        json!({"model": "glm-4.6", "stream": stream,
               "messages": [{"role": "user", "content": "Hello"}]})
    };
    // (path, body, key, status, the alias and GLM model logged)
    let runs = [
        (
            "chat/completions",
            chat("Hello", false),
            0,
            200,
            "gpt-4o",
            "glm-4.6v",
        ),
        (
            "chat/completions",
            chat("Hello", true),
            1,
            200,
            "gpt-4o",
            "glm-4.6v",
        ),
        (
            "chat/completions",
            unpriced(false),
            0,
            200,
            "glm-4.6",
            "glm-4.6",
        ),
        (
            "chat/completions",
            unpriced(true),
            1,
            200,
            "glm-4.6",
            "glm-4.6",
        ),
        (
            "chat/completions",
            unpriced(false),
            1,
            200,
            "glm-4.6",
            "glm-4.6",
        ),
        (
            "embeddings",
            embed,
            0,
            200,
            "text-embedding-3-small",
            "embedding-3",
        ),
        (
            "chat/completions",
            chat("#error 1301", false),
            1,
            400,
            "gpt-4o",
            "glm-4.6v",
        ),
        (
            "chat/completions",
            chat("a retry #error 1234 #once", false),
            0,
            200,
            "gpt-4o",
            "glm-4.6v",
        ),
    ];
    let mut served = Vec::new();
    for (path, body, key, status, alias, model) in runs {
        let response = http
            .post(format!("{url}/v1/{path}"))
            .bearer_auth(&keys[key].0)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path} {body}");
        let id = request_id(&response);
        response.bytes().await.unwrap();
        served.push((id, key, status, alias, model));
    }
    let unauthorized = http
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth("sk-glm-nobody-nothing")
        .json(&chat("Hello", false))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    gateway.start_kill().unwrap();
    let output = gateway.wait_with_output().await.unwrap();
    let log = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(lines.len() > served.len(), "{log}");
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "glm_gateway::access")
        .collect();
    assert_eq!(access.len(), served.len(), "{log}");
    for (id, key, status, alias, model) in &served {
        let mine: Vec<&&Value> = access.iter().filter(|l| l["request_id"] == **id).collect();
        assert_eq!(mine.len(), 1, "one access line for {id}: {log}");
        let line = mine[0];
        assert_eq!(line["span"]["request_id"], **id, "{line}");
        assert_eq!(line["key"], *keys[*key].1, "{line}");
        assert_eq!(line["team"], ["alpha", "beta"][*key], "{line}");
        assert_eq!(line["status"], *status, "{line}");
        assert_eq!(line["alias"], *alias, "{line}");
        assert_eq!(line["model"], *model, "{line}");
        for field in [
            "prompt_tokens",
            "completion_tokens",
            "latency_ms",
            "upstream_ms",
        ] {
            assert!(line[field].is_u64(), "{field} in {line}");
        }
        if *status == 200 {
            assert!(line["prompt_tokens"].as_u64().unwrap() > 0, "{line}");
        }
    }
    // Lines logged while serving a request carry its id, like the retry of the 1234.
    let retry = lines
        .iter()
        .find(|l| l["message"] == "retrying an upstream call")
        .unwrap_or_else(|| panic!("no retry logged: {log}"));
    assert_eq!(retry["span"]["request_id"], *served[7].0, "{retry}");
    // Three rows of a model without a price: one warning, naming it.
    let unpriced: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["level"] == "WARN"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("no price covers this model"))
        })
        .collect();
    assert_eq!(unpriced.len(), 1, "{log}");
    assert_eq!(unpriced[0]["model"], "glm-4.6", "{log}");
    for line in lines.iter().filter(|l| l.get("span").is_some()) {
        assert!(line["span"]["request_id"].is_string(), "{line}");
    }

    let upstream_secret = UPSTREAM_KEY.split_once('.').unwrap().1;
    let mut secrets = vec![UPSTREAM_KEY, upstream_secret, ADMIN_TOKEN, "eyJ"];
    for (key, id) in &keys {
        let secret = key.rsplit_once('-').unwrap().1;
        assert!(secret.len() >= 16 && !id.contains(secret), "{key}");
        secrets.extend([key.as_str(), secret]);
    }
    for secret in secrets {
        assert!(!log.contains(secret), "the log holds {secret:?}: {log}");
    }
}
