//! The usage ledger's SQL on both backends against a real Postgres and a SQLite file: inserts,
//! `usage_daily`, summaries, partitions, retention, and every query of `docs/dashboards.md`.

use chrono::{DateTime, NaiveDate, Utc};
use glm_gateway::store::{Db, UsageGroup};
use glm_gateway::usage::{UsageEvent, UsageSource};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::{Row, TypeInfo, ValueRef};

use crate::helpers::fresh_postgres_database;

/// A migrated database; the SQLite folder lives as long as it does.
struct TestDb {
    db: Db,
    _folder: Option<tempfile::TempDir>,
}

async fn postgres() -> TestDb {
    let db = Db::connect(&fresh_postgres_database().await).await.unwrap();
    db.migrate().await.unwrap();
    TestDb { db, _folder: None }
}

async fn sqlite() -> TestDb {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", folder.path().join("ledger.db").display());
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    TestDb {
        db,
        _folder: Some(folder),
    }
}

async fn both() -> [TestDb; 2] {
    [postgres().await, sqlite().await]
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn event(id: &str, at: &str, key: &str, team: &str, model: Option<&str>) -> UsageEvent {
    UsageEvent {
        request_id: id.into(),
        created_at: at.parse().unwrap(),
        api_key_id: key.into(),
        team: team.into(),
        endpoint: "chat".into(),
        requested_model: model.map(|m| format!("alias-{m}")),
        upstream_model: model.map(Into::into),
        streamed: false,
        status_code: 200,
        error_code: None,
        prompt_tokens: 0,
        completion_tokens: 0,
        total_tokens: 0,
        cached_tokens: 0,
        image_count: 0,
        latency_ms: 120,
        usage_source: UsageSource::Upstream,
        client_disconnected: false,
        cost: Some(Decimal::ZERO),
        prompt_text: None,
        emulated: None,
        completion_text: None,
    }
}

fn tokens(mut e: UsageEvent, prompt: i64, completion: i64, cost: &str) -> UsageEvent {
    e.prompt_tokens = prompt;
    e.completion_tokens = completion;
    e.total_tokens = prompt + completion;
    e.cost = Some(cost.parse().unwrap());
    e
}

fn streamed(mut e: UsageEvent) -> UsageEvent {
    e.streamed = true;
    e
}

/// Ten rows over three UTC days, two teams, three keys and four models (one row without one).
fn fixture() -> Vec<UsageEvent> {
    let mut r3 = streamed(tokens(
        event(
            "r3",
            "2026-03-01T23:59:59.5Z",
            "k3",
            "beta",
            Some("glm-4-flash"),
        ),
        50,
        30,
        "0.0",
    ));
    r3.usage_source = UsageSource::Estimated;
    r3.client_disconnected = true;
    let mut r4 = tokens(
        event(
            "r4",
            "2026-03-02T08:00:00Z",
            "k2",
            "alpha",
            Some("embedding-3"),
        ),
        400,
        0,
        "0.0002",
    );
    r4.endpoint = "embeddings".into();
    let mut r5 = event("r5", "2026-03-02T09:00:00Z", "k3", "beta", None);
    (r5.status_code, r5.error_code, r5.cost) = (400, Some("invalid_request".into()), None);
    r5.usage_source = UsageSource::None;
    let mut r6 = streamed(tokens(
        event(
            "r6",
            "2026-03-02T10:00:00Z",
            "k3",
            "beta",
            Some("glm-4-plus"),
        ),
        10,
        0,
        "0.0005",
    ));
    r6.error_code = Some("1301".into());
    let mut r10 = streamed(tokens(
        event(
            "r10",
            "2026-03-02T11:00:00Z",
            "k1",
            "alpha",
            Some("glm-4-plus"),
        ),
        20,
        40,
        "0.003",
    ));
    r10.usage_source = UsageSource::Estimated;
    r10.client_disconnected = true;
    let mut r8 = event(
        "r8",
        "2026-03-03T12:00:00Z",
        "k2",
        "alpha",
        Some("cogview-3-plus"),
    );
    (r8.image_count, r8.cost) = (2, Some("0.12".parse().unwrap()));
    let mut r9 = event(
        "r9",
        "2026-03-03T13:00:00Z",
        "k3",
        "beta",
        Some("glm-4-plus"),
    );
    (r9.status_code, r9.error_code) = (429, Some("rate_limited".into()));
    r9.usage_source = UsageSource::None;
    let r1 = event(
        "r1",
        "2026-03-01T09:00:00Z",
        "k1",
        "alpha",
        Some("glm-4-plus"),
    );
    let r2 = event(
        "r2",
        "2026-03-01T10:00:00Z",
        "k1",
        "alpha",
        Some("glm-4-plus"),
    );
    let r7 = event(
        "r7",
        "2026-03-03T00:00:00Z",
        "k1",
        "alpha",
        Some("glm-4-flash"),
    );
    vec![
        tokens(r1, 100, 50, "0.0075"),
        streamed(tokens(r2, 200, 100, "0.015")),
        r3,
        r4,
        r5,
        r6,
        streamed(tokens(r7, 1000, 500, "0")),
        r8,
        r9,
        r10,
    ]
}

/// Runs a query and answers its rows as JSON arrays, columns in order, on either backend.
async fn rows(db: &Db, sql: &str) -> Vec<Vec<Value>> {
    match db {
        Db::Postgres(pool) => {
            // NUMERIC has no decoder here, so Postgres renders each row as JSON itself.
            let wrapped = format!(
                "SELECT (SELECT json_agg(e.value ORDER BY e.n) FROM json_each(to_json(q)) \
                 WITH ORDINALITY AS e(key, value, n))::text FROM ({sql}) q"
            );
            let texts: Vec<String> = sqlx::query_scalar(&wrapped).fetch_all(pool).await.unwrap();
            texts
                .iter()
                .map(|t| serde_json::from_str(t).unwrap())
                .collect()
        }
        Db::Sqlite(pool) => {
            let rows = sqlx::query(sql).fetch_all(pool).await.unwrap();
            rows.iter()
                .map(|row| {
                    (0..row.columns().len())
                        .map(|i| sqlite_value(row, i))
                        .collect()
                })
                .collect()
        }
    }
}

fn sqlite_value(row: &sqlx::sqlite::SqliteRow, i: usize) -> Value {
    let raw = row.try_get_raw(i).unwrap();
    if raw.is_null() {
        return Value::Null;
    }
    match raw.type_info().name() {
        "INTEGER" => json!(row.get::<i64, _>(i)),
        "REAL" => json!(row.get::<f64, _>(i)),
        _ => json!(row.get::<String, _>(i)),
    }
}

/// Compares row by row, numbers within 1e-9 (costs are NUMERIC on one side, REAL on the other).
fn assert_rows(actual: &[Vec<Value>], expected: &[Value], what: &str) {
    let expected: Vec<&Vec<Value>> = expected.iter().map(|r| r.as_array().unwrap()).collect();
    assert_eq!(actual.len(), expected.len(), "{what}: {actual:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert_eq!(a.len(), e.len(), "{what}: {a:?} vs {e:?}");
        for (x, y) in a.iter().zip(e) {
            let same = match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() < 1e-9,
                _ => x == y,
            };
            assert!(same, "{what}: {a:?} vs {e:?}");
        }
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    let rows = rows(db, sql).await;
    rows[0][0].as_i64().unwrap()
}

/// `usage_daily` whole, in a fixed order.
const DAILY: &str = "SELECT day, team, api_key_id, upstream_model, requests, prompt_tokens, \
    completion_tokens, total_tokens, image_count, cost, errors FROM usage_daily \
    ORDER BY day, team, api_key_id, upstream_model";

#[tokio::test]
async fn inserts_skip_rows_already_stored() {
    for t in both().await {
        let db = &t.db;
        let events = fixture();
        assert_eq!(
            db.insert_usage(&events).await.unwrap(),
            10,
            "{}",
            db.backend()
        );
        assert_eq!(db.insert_usage(&events).await.unwrap(), 0);
        assert_eq!(db.insert_usage(&[]).await.unwrap(), 0);
        // A batch repeating a row within itself and with the table.
        let new = event("r11", "2026-03-04T01:00:00Z", "k1", "alpha", None);
        let batch = [events[0].clone(), new.clone(), new];
        assert_eq!(db.insert_usage(&batch).await.unwrap(), 1);
        assert_eq!(count(db, "SELECT COUNT(*) FROM usage_events").await, 11);
        let stored = rows(
            db,
            "SELECT created_at, usage_source, cost, error_code, requested_model \
             FROM usage_events WHERE request_id = 'r5'",
        )
        .await;
        let at: DateTime<Utc> = stored[0][0].as_str().unwrap().parse().unwrap();
        assert_eq!(at, events[4].created_at);
        assert_eq!(
            stored[0][1..],
            [
                json!("none"),
                Value::Null,
                json!("invalid_request"),
                Value::Null
            ]
        );
    }
}

#[tokio::test]
async fn sqlite_inserts_span_many_statements() {
    let t = sqlite().await;
    let many: Vec<UsageEvent> = (0..1001)
        .map(|i| {
            event(
                &format!("m{i}"),
                "2026-03-01T00:00:00Z",
                "k1",
                "alpha",
                None,
            )
        })
        .collect();
    assert_eq!(t.db.insert_usage(&many).await.unwrap(), 1001);
    assert_eq!(t.db.insert_usage(&many).await.unwrap(), 0);
}

#[tokio::test]
async fn usage_daily_sums_the_rows_by_utc_day() {
    for t in both().await {
        let db = &t.db;
        db.insert_usage(&fixture()).await.unwrap();
        let expected = [
            json!([
                "2026-03-01",
                "alpha",
                "k1",
                "glm-4-plus",
                2,
                300,
                150,
                450,
                0,
                0.0225,
                0
            ]),
            json!([
                "2026-03-01",
                "beta",
                "k3",
                "glm-4-flash",
                1,
                50,
                30,
                80,
                0,
                0.0,
                0
            ]),
            json!([
                "2026-03-02",
                "alpha",
                "k1",
                "glm-4-plus",
                1,
                20,
                40,
                60,
                0,
                0.003,
                0
            ]),
            json!([
                "2026-03-02",
                "alpha",
                "k2",
                "embedding-3",
                1,
                400,
                0,
                400,
                0,
                0.0002,
                0
            ]),
            json!(["2026-03-02", "beta", "k3", "", 1, 0, 0, 0, 0, null, 1]),
            json!([
                "2026-03-02",
                "beta",
                "k3",
                "glm-4-plus",
                1,
                10,
                0,
                10,
                0,
                0.0005,
                1
            ]),
            json!([
                "2026-03-03",
                "alpha",
                "k1",
                "glm-4-flash",
                1,
                1000,
                500,
                1500,
                0,
                0.0,
                0
            ]),
            json!([
                "2026-03-03",
                "alpha",
                "k2",
                "cogview-3-plus",
                1,
                0,
                0,
                0,
                2,
                0.12,
                0
            ]),
            json!([
                "2026-03-03",
                "beta",
                "k3",
                "glm-4-plus",
                1,
                0,
                0,
                0,
                0,
                0.0,
                1
            ]),
        ];
        assert_rows(&rows(db, DAILY).await, &expected, db.backend());
    }
}

fn summary_rows(summaries: &[glm_gateway::store::UsageSummary]) -> Vec<Vec<Value>> {
    summaries
        .iter()
        .map(|s| {
            let mut row = vec![json!(s.name), json!(s.requests), json!(s.prompt_tokens)];
            row.extend([
                json!(s.completion_tokens),
                json!(s.total_tokens),
                json!(s.cost),
            ]);
            row
        })
        .collect()
}

#[tokio::test]
async fn summaries_group_by_team_key_or_model_within_dates() {
    for t in both().await {
        let db = &t.db;
        db.insert_usage(&fixture()).await.unwrap();
        let summary = |by, since: Option<&str>, until: Option<&str>| {
            let got = db.usage_summary(by, since.map(date), until.map(date));
            async move { summary_rows(&got.await.unwrap()) }
        };
        let what = db.backend();
        let teams = [
            json!(["alpha", 6, 1720, 690, 2410, 0.1457]),
            json!(["beta", 4, 60, 30, 90, 0.0005]),
        ];
        assert_rows(&summary(UsageGroup::Team, None, None).await, &teams, what);
        let keys = [
            json!(["k1", 4, 1320, 690, 2010, 0.0255]),
            json!(["k2", 2, 400, 0, 400, 0.1202]),
            json!(["k3", 4, 60, 30, 90, 0.0005]),
        ];
        assert_rows(&summary(UsageGroup::Key, None, None).await, &keys, what);
        let models = [
            json!(["glm-4-flash", 2, 1050, 530, 1580, 0.0]),
            json!(["glm-4-plus", 5, 330, 190, 520, 0.026]),
            json!(["embedding-3", 1, 400, 0, 400, 0.0002]),
            json!(["", 1, 0, 0, 0, null]),
            json!(["cogview-3-plus", 1, 0, 0, 0, 0.12]),
        ];
        assert_rows(&summary(UsageGroup::Model, None, None).await, &models, what);
        let one_day = [
            json!(["alpha", 2, 420, 40, 460, 0.0032]),
            json!(["beta", 2, 10, 0, 10, 0.0005]),
        ];
        let got = summary(UsageGroup::Team, Some("2026-03-02"), Some("2026-03-02")).await;
        assert_rows(&got, &one_day, what);
        let first = [
            json!(["alpha", 2, 300, 150, 450, 0.0225]),
            json!(["beta", 1, 50, 30, 80, 0.0]),
        ];
        assert_rows(
            &summary(UsageGroup::Team, None, Some("2026-03-01")).await,
            &first,
            what,
        );
        let last = [
            json!(["alpha", 2, 1000, 500, 1500, 0.12]),
            json!(["beta", 1, 0, 0, 0, 0.0]),
        ];
        assert_rows(
            &summary(UsageGroup::Team, Some("2026-03-03"), None).await,
            &last,
            what,
        );
        assert!(summary(UsageGroup::Key, Some("2027-01-01"), None)
            .await
            .is_empty());
    }
}

/// The ```sql blocks of docs/dashboards.md, in order.
fn dashboard_queries() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/dashboards.md"));
    let doc = doc.unwrap();
    doc.split("```sql\n")
        .skip(1)
        .map(|block| {
            block
                .split("```")
                .next()
                .unwrap()
                .trim()
                .trim_end_matches(';')
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn every_dashboard_query_answers_on_both_backends() {
    let expected: [&[Value]; 7] = [
        &[
            json!(["2026-03-01", "alpha", 2, 450]),
            json!(["2026-03-01", "beta", 1, 80]),
            json!(["2026-03-02", "alpha", 2, 460]),
            json!(["2026-03-02", "beta", 2, 10]),
            json!(["2026-03-03", "alpha", 2, 1500]),
            json!(["2026-03-03", "beta", 1, 0]),
        ],
        &[
            json!(["k1", "ci-bot", 2010]),
            json!(["k2", "search", 400]),
            json!(["k3", null, 90]),
        ],
        &[
            json!(["cogview-3-plus", 1, 0, 2, 0.12]),
            json!(["glm-4-plus", 5, 520, 0, 0.026]),
            json!(["embedding-3", 1, 400, 0, 0.0002]),
            json!(["", 1, 0, 0, null]),
            json!(["glm-4-flash", 2, 1580, 0, 0.0]),
        ],
        // Cost per team and model in December 2026: the test ledger is of March.
        &[],
        &[json!(["beta", 4, 3, 0.75]), json!(["alpha", 6, 0, 0.0])],
        &[json!(["stream", 5, 2, 1950]), json!(["whole", 5, 0, 550])],
        &[
            json!(["beta", "k3", "glm-4-flash", 1, 80]),
            json!(["alpha", "k1", "glm-4-plus", 1, 60]),
        ],
    ];
    let queries = dashboard_queries();
    assert_eq!(queries.len(), expected.len(), "one expectation per query");
    for t in both().await {
        let db = &t.db;
        for (id, name, team) in [("k1", "ci-bot", "alpha"), ("k2", "search", "alpha")] {
            db.insert_key(&crate::helpers::plain_key(id, name, team, &"0".repeat(64)))
                .await
                .unwrap();
        }
        db.insert_usage(&fixture()).await.unwrap();
        for (i, (sql, expected)) in queries.iter().zip(expected).enumerate() {
            let what = format!("{} query {}", db.backend(), i + 1);
            assert_rows(&rows(db, sql).await, expected, &what);
        }
    }
}

async fn partition_of(db: &Db, request_id: &str) -> String {
    let Db::Postgres(pool) = db else {
        unreachable!()
    };
    sqlx::query_scalar("SELECT tableoid::regclass::text FROM usage_events WHERE request_id = $1")
        .bind(request_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn partition_exists(db: &Db, name: &str) -> bool {
    let Db::Postgres(pool) = db else {
        unreachable!()
    };
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn rows_land_in_their_days_partition() {
    let t = postgres().await;
    let db = &t.db;
    db.prepare_partitions(date("2026-03-01"), date("2026-03-02"))
        .await
        .unwrap();
    // Again: the days that exist are left alone.
    db.prepare_partitions(date("2026-02-28"), date("2026-03-02"))
        .await
        .unwrap();
    db.insert_usage(&fixture()).await.unwrap();
    assert_eq!(partition_of(db, "r1").await, "usage_events_p20260301");
    // 23:59:59.5 UTC is still the first day, whatever the session's time zone.
    assert_eq!(partition_of(db, "r3").await, "usage_events_p20260301");
    assert_eq!(partition_of(db, "r4").await, "usage_events_p20260302");
    assert_eq!(partition_of(db, "r7").await, "usage_events_default");
    // The default partition holds rows of 03-03, so that day's partition is skipped, not fatal.
    db.prepare_partitions(date("2026-03-03"), date("2026-03-04"))
        .await
        .unwrap();
    assert!(!partition_exists(db, "usage_events_p20260303").await);
    assert!(partition_exists(db, "usage_events_p20260304").await);
    assert_eq!(partition_of(db, "r7").await, "usage_events_default");

    let s = sqlite().await;
    s.db.prepare_partitions(date("2026-03-01"), date("2026-03-02"))
        .await
        .unwrap();
}

#[tokio::test]
async fn retention_moves_old_days_into_rollups() {
    for t in both().await {
        let db = &t.db;
        let what = db.backend();
        db.prepare_partitions(date("2026-03-01"), date("2026-03-02"))
            .await
            .unwrap();
        db.insert_usage(&fixture()).await.unwrap();
        // Enough rows of an older day, with no partition, for several SQLite batches.
        let bulk: Vec<UsageEvent> = (0..12_000)
            .map(|i| {
                let e = event(&format!("b{i}"), "2026-02-10T06:00:00Z", "k9", "bulk", None);
                tokens(e, 1, 0, "0")
            })
            .collect();
        db.insert_usage(&bulk).await.unwrap();
        let before = rows(db, DAILY).await;

        assert_eq!(
            db.apply_retention(date("2026-03-03")).await.unwrap(),
            12_007,
            "{what}"
        );
        assert_eq!(db.apply_retention(date("2026-03-03")).await.unwrap(), 0);
        let left = rows(
            db,
            "SELECT request_id FROM usage_events ORDER BY request_id",
        )
        .await;
        assert_eq!(
            left,
            [[json!("r7")], [json!("r8")], [json!("r9")]],
            "{what}"
        );
        let rollups = count(db, "SELECT COUNT(*) FROM usage_rollups").await;
        assert_eq!(rollups, 7, "{what}");
        assert_eq!(rows(db, DAILY).await, before, "{what}");
        if matches!(db, Db::Postgres(_)) {
            assert!(!partition_exists(db, "usage_events_p20260301").await);
            assert!(!partition_exists(db, "usage_events_p20260302").await);
        }

        // A late row of a rolled-up day adds to that day's totals.
        let late = tokens(
            event(
                "late",
                "2026-03-01T12:00:00Z",
                "k1",
                "alpha",
                Some("glm-4-plus"),
            ),
            5,
            5,
            "0.001",
        );
        db.insert_usage(&[late]).await.unwrap();
        assert_eq!(db.apply_retention(date("2026-03-03")).await.unwrap(), 1);
        let day = rows(
            db,
            "SELECT requests, total_tokens, cost, errors FROM usage_rollups \
             WHERE team = 'alpha' AND api_key_id = 'k1' AND upstream_model = 'glm-4-plus' \
             AND day = '2026-03-01'",
        )
        .await;
        assert_rows(&day, &[json!([3, 460, 0.0235, 0])], what);

        // The rest, beyond the last partition.
        assert_eq!(db.apply_retention(date("2026-03-04")).await.unwrap(), 3);
        assert_eq!(count(db, "SELECT COUNT(*) FROM usage_events").await, 0);
        let errors = count(db, "SELECT SUM(errors) FROM usage_daily").await;
        assert_eq!(errors, 3, "{what}");
    }
}
