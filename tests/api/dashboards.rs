//! The Grafana dashboards and the compose profile that runs them ask only for what exists: each
//! PromQL query names metrics (and labels) a real gateway exports after a few requests, each
//! SQL query runs on a migrated PostgreSQL ledger holding their rows, and the compose file
//! mounts provisioning files that are there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use glm_gateway::store::Db;
use serde_json::{json, Value};

use crate::faults::{create_key_at, gateway_env, start_gateway_with};
use crate::helpers::{fresh_postgres_database, wait_for_rows};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every dashboard, parsed: (file name, JSON).
fn dashboards() -> Vec<(String, Value)> {
    let mut found: Vec<(String, Value)> = std::fs::read_dir(repo("config/grafana/dashboards"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, value)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(found.len(), 2, "the gateway and usage dashboards");
    found
}

/// Each query of a dashboard (panel targets and template variables): (datasource uid, text).
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let uid = |v: &Value| {
        v["datasource"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let text = target["expr"].as_str().or(target["rawSql"].as_str());
            let text = text.unwrap_or_else(|| panic!("a target without a query: {target}"));
            assert_eq!(uid(target), uid(panel), "{}", panel["title"]);
            out.push((uid(target), text.to_owned()));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.push((
            uid(variable),
            variable["query"].as_str().unwrap().to_owned(),
        ));
    }
    out
}

/// Sample names in a Prometheus text page, each with the label names seen on it.
fn samples(page: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap();
        let labels = out.entry(line[..end].to_owned()).or_default();
        if let Some(inner) = line[end..].strip_prefix('{') {
            let inner = &inner[..inner.rfind('}').unwrap()];
            labels.extend(inner.split("\",").filter_map(|pair| {
                pair.split_once('=')
                    .map(|(name, _)| name.trim_start_matches(',').to_owned())
            }));
        }
    }
    out
}

/// The words of a PromQL expression that name metrics or labels.
fn words(expr: &str) -> impl Iterator<Item = &str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

/// The label names an expression groups by (`by (a, b)`) or matches on (`{a="…"}`).
fn labels_used(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (open, close, part) in [("by (", ')', 0), ("{", '}', 1)] {
        for piece in expr.split(open).skip(1) {
            let inner = &piece[..piece.find(close).unwrap()];
            for item in inner.split(',') {
                let name = match part {
                    0 => item.trim(),
                    _ => item.split(['=', '!']).next().unwrap().trim(),
                };
                if !name.is_empty() {
                    out.insert(name.to_owned());
                }
            }
        }
    }
    out
}

/// Grafana's macros and the `team` variable as Grafana expands them.
fn expand(sql: &str, team: &str) -> String {
    let mut sql = sql.replace("$team", &format!("'{team}'"));
    while let Some(at) = sql.find("$__timeFilter(") {
        let rest = &sql[at + "$__timeFilter(".len()..];
        let column = &rest[..rest.find(')').unwrap()];
        let expanded =
            format!("{column} BETWEEN '2000-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'");
        sql = format!("{}{expanded}{}", &sql[..at], &rest[column.len() + 1..]);
    }
    assert!(!sql.contains('$'), "a macro left: {sql}");
    sql
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_names_what_a_running_gateway_exports_and_the_ledger_holds() {
    let folder = tempfile::tempdir().unwrap();
    let upstream = crate::helpers::spawn_emulator(Duration::from_millis(1)).await;
    let database_url = fresh_postgres_database().await;
    let config = folder.path().join("gateway.toml");
    std::fs::write(&config, "").unwrap();
    let mut env = gateway_env(&database_url, upstream, &folder.path().join("journal"));
    env.push(("GLM_GATEWAY_LOG_FORMAT", "json".to_owned()));
    let (mut gateway, url) = start_gateway_with(&[], &env, &config, Stdio::piped()).await;
    let http = reqwest::Client::new();
    let (key, _) = create_key_at(&url, "observers").await;
    let chat = |content: &str, stream: bool| {
        json!({"model": "gpt-4o", "stream": stream,
               "messages": [{"role": "user", "content": content}]})
    };
    let requests = [
        ("chat/completions", chat("Hello", false)),
        ("chat/completions", chat("Hello", true)),
        (
            "embeddings",
            json!({"model": "text-embedding-3-small", "input": "a"}),
        ),
        ("chat/completions", chat("#error 1301", false)),
        ("chat/completions", chat("a retry #error 1234 #once", false)),
    ];
    for (path, body) in &requests {
        let response = http
            .post(format!("{url}/v1/{path}"))
            .bearer_auth(&key)
            .json(body)
            .send()
            .await
            .unwrap();
        response.bytes().await.unwrap();
    }
    let unmatched = http
        .get(format!("{url}/no/such/path"))
        .send()
        .await
        .unwrap();
    assert_eq!(unmatched.status(), 404);
    let page = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported = samples(&page);
    for sample in [
        r#"glm_gateway_requests_total{route="/v1/chat/completions",status="200",alias="gpt-4o",team="observers"} 3"#,
        r#"glm_gateway_requests_total{route="/v1/embeddings",status="200",alias="text-embedding-3-small",team="observers"} 1"#,
        r#"glm_gateway_requests_total{route="unmatched",status="404",alias="",team=""} 1"#,
        r#"glm_gateway_upstream_errors_total{code="1301"} 1"#,
        r#"glm_gateway_upstream_errors_total{code="1234"} 1"#,
        r#"glm_gateway_time_to_first_token_seconds_count{route="/v1/chat/completions",alias="gpt-4o"} 1"#,
        r#"glm_gateway_overhead_seconds_count{route="/v1/chat/completions"} 4"#,
        r#"glm_gateway_ledger_rows_lost_total 0"#,
        r#"glm_gateway_upstream_key_available{key_id="test-upstream-id"} 1"#,
    ] {
        assert!(
            page.lines().any(|line| line == sample),
            "{sample} in\n{page}"
        );
    }

    let db = Db::connect(&database_url).await.unwrap();
    wait_for_rows(&db, requests.len()).await;
    let Db::Postgres(pool) = &db else {
        panic!("a PostgreSQL ledger")
    };
    for (name, dashboard) in dashboards() {
        for (uid, query) in queries(&dashboard) {
            match uid.as_str() {
                "prometheus" => check_promql(&name, &query, &exported, &page),
                "ledger" => {
                    let sql = expand(&query, "observers");
                    let rows = sqlx::query(&sql).fetch_all(pool).await;
                    let rows = rows.unwrap_or_else(|e| panic!("{name}: {e}\n{sql}"));
                    assert!(!rows.is_empty(), "{name}: no rows from\n{sql}");
                }
                other => panic!("{name}: unknown data source `{other}`"),
            }
        }
    }
    db.close().await;

    gateway.start_kill().unwrap();
    let output = gateway.wait_with_output().await.unwrap();
    let log = String::from_utf8(output.stderr).unwrap();
    assert!(log.lines().count() > 0);
    for line in log.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("GLM_GATEWAY_LOG_FORMAT=json: {e}: {line}"));
    }
}

fn check_promql(
    dashboard: &str,
    expr: &str,
    exported: &BTreeMap<String, BTreeSet<String>>,
    page: &str,
) {
    let metrics: Vec<&str> = words(expr)
        .filter(|w| w.starts_with("glm_gateway_"))
        .collect();
    assert!(
        !metrics.is_empty(),
        "{dashboard}: no gateway metric in {expr}"
    );
    let mut labels = BTreeSet::new();
    for metric in &metrics {
        let seen = exported
            .get(*metric)
            .unwrap_or_else(|| panic!("{dashboard}: {metric} is not exported:\n{page}"));
        labels.extend(seen.iter().cloned());
    }
    for label in labels_used(expr) {
        assert!(
            labels.contains(&label),
            "{dashboard}: no label `{label}` on {metrics:?} ({expr})"
        );
    }
}

#[test]
fn the_compose_profile_mounts_what_exists_and_its_services_find_each_other() {
    let compose: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo("docker-compose.yml")).unwrap())
            .unwrap();
    let services = compose["services"].as_mapping().unwrap();
    for name in ["postgres", "gateway"] {
        assert!(
            services[name].get("profiles").is_none(),
            "{name} runs with a plain `docker compose up`"
        );
    }
    let mut mounted = BTreeMap::new();
    for name in ["prometheus", "grafana"] {
        let service = &services[name];
        assert_eq!(
            service["profiles"],
            serde_yaml::from_str::<serde_yaml::Value>("[observability]").unwrap()
        );
        for volume in service["volumes"].as_sequence().unwrap() {
            let volume = volume.as_str().unwrap();
            let mut parts = volume.split(':');
            let (source, target) = (parts.next().unwrap(), parts.next().unwrap());
            if let Some(local) = source.strip_prefix("./") {
                assert!(
                    repo(local).exists(),
                    "{name} mounts {source}, which is missing"
                );
                mounted.insert(target.to_owned(), local.to_owned());
            } else {
                assert!(compose["volumes"].get(source).is_some(), "volume {source}");
            }
        }
    }
    let yaml = |path: &str| -> serde_yaml::Value {
        serde_yaml::from_str(&std::fs::read_to_string(repo(path)).unwrap()).unwrap()
    };
    assert_eq!(
        mounted["/etc/prometheus/prometheus.yml"],
        "config/prometheus.yml"
    );
    let prometheus = yaml("config/prometheus.yml");
    let target = &prometheus["scrape_configs"][0]["static_configs"][0]["targets"][0];
    assert_eq!(target.as_str(), Some("gateway:8080"));
    assert_eq!(
        mounted["/etc/grafana/provisioning"],
        "config/grafana/provisioning"
    );
    let provider = yaml("config/grafana/provisioning/dashboards/dashboards.yml");
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(mounted[path], "config/grafana/dashboards");
    let sources = yaml("config/grafana/provisioning/datasources/datasources.yml");
    let sources = sources["datasources"].as_sequence().unwrap();
    let by_uid: BTreeMap<&str, (&str, &str)> = sources
        .iter()
        .map(|s| {
            let text = |field: &str| s[field].as_str().unwrap();
            (text("uid"), (text("type"), text("url")))
        })
        .collect();
    assert_eq!(by_uid["prometheus"].1, "http://prometheus:9090");
    assert_eq!(by_uid["ledger"].1, "postgres:5432");
    for (name, dashboard) in dashboards() {
        for panel in dashboard["panels"].as_array().unwrap() {
            let Some(uid) = panel["datasource"]["uid"].as_str() else {
                continue;
            };
            let kind = panel["datasource"]["type"].as_str().unwrap();
            assert_eq!(by_uid[uid].0, kind, "{name}: {}", panel["title"]);
        }
    }
}
