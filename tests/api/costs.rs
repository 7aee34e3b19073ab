//! Rows priced from the model catalogue, on both backends: the 2026 tiers of glm-4.7, what
//! `gpt-4o` maps to, an embedding, an image, a model without a price and a configured one; and
//! cost budgets that refuse default traffic once spent.

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;

/// CNY per million tokens.
fn per_million(tokens: i64, price: &str) -> Decimal {
    Decimal::from(tokens) * price.parse::<Decimal>().unwrap() / Decimal::from(1_000_000)
}

/// The row's cost, exactly as stored (Postgres keeps NUMERIC; SQLite a float, compared to
/// within 1e-12).
async fn assert_cost(app: &TestApp, row: &UsageRow, expected: Option<Decimal>) {
    let Some(expected) = expected else {
        assert_eq!(row.cost, None, "{row:?}");
        return;
    };
    let stored = row.cost.unwrap_or_else(|| panic!("cost NULL: {row:?}"));
    let float: f64 = expected.to_string().parse().unwrap();
    assert!(
        (stored - float).abs() < 1e-12,
        "{stored} != {expected}: {row:?}"
    );
    if let glm_gateway::store::Db::Postgres(pool) = &app.db {
        let text: String =
            sqlx::query_scalar("SELECT cost::text FROM usage_events WHERE request_id = $1")
                .bind(&row.request_id)
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(text.parse::<Decimal>().unwrap(), expected, "{row:?}");
    }
}

async fn chat_row(app: &TestApp, key: &str, model: &str, text: &str) -> UsageRow {
    let body = json!({"model": model, "messages": [{"role": "user", "content": text}]});
    let response = app.chat(key, body).await;
    assert_eq!(response.status(), 200);
    row_of(&app.db, &request_id(&response)).await
}

async fn chat_rows_are_priced_by_tier(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    // glm-4.7 below 32K in and 0.2K out: 2 / 8.
    let row = chat_row(&app, &key, "glm-4.7", "hi").await;
    assert!(row.completion_tokens < 200);
    let want = per_million(row.prompt_tokens, "2") + per_million(row.completion_tokens, "8");
    assert_cost(&app, &row, Some(want)).await;
    // Output past 0.2K: 3 / 14.
    let row = chat_row(&app, &key, "glm-4.7", "#chunks 250").await;
    assert_eq!(row.completion_tokens, 250);
    let want = per_million(row.prompt_tokens, "3") + per_million(row.completion_tokens, "14");
    assert_cost(&app, &row, Some(want)).await;
    // A prompt past 32K tokens: 4 / 16.
    let long = "word ".repeat(30_000);
    let row = chat_row(&app, &key, "glm-4.7", &long).await;
    assert!(row.prompt_tokens >= 32_000, "{}", row.prompt_tokens);
    let want = per_million(row.prompt_tokens, "4") + per_million(row.completion_tokens, "16");
    assert_cost(&app, &row, Some(want)).await;
    // gpt-4o goes to glm-4.6v: 1 / 3.
    let row = chat_row(&app, &key, "gpt-4o", "hello").await;
    assert_eq!(row.upstream_model.as_deref(), Some("glm-4.6v"));
    let want = per_million(row.prompt_tokens, "1") + per_million(row.completion_tokens, "3");
    assert_cost(&app, &row, Some(want)).await;
    // glm-5.1 below 32K: 6 / 24.
    let row = chat_row(&app, &key, "gpt-5", "hello").await;
    assert_eq!(row.upstream_model.as_deref(), Some("glm-5.1"));
    let want = per_million(row.prompt_tokens, "6") + per_million(row.completion_tokens, "24");
    assert_cost(&app, &row, Some(want)).await;
    // glm-5.1 with cache hits: the cached tokens at 1.3, the rest of the prompt at 6.
    let row = chat_row(&app, &key, "glm-5.1", "#cached 3 hello there, how are you").await;
    assert_eq!(row.cached_tokens, 3, "{row:?}");
    assert!(row.prompt_tokens > 3, "{row:?}");
    let want = per_million(row.prompt_tokens - 3, "6")
        + per_million(3, "1.3")
        + per_million(row.completion_tokens, "24");
    assert_cost(&app, &row, Some(want)).await;
    // glm-4.6 is on no price list: NULL.
    let row = chat_row(&app, &key, "glm-4.6", "hello").await;
    assert_cost(&app, &row, None).await;
    // usage_daily sums the day's costs per model.
    let daily: Value = app
        .http
        .get(app.url("/admin/usage?by=model"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let models = daily["data"].as_array().unwrap();
    let glm47 = models.iter().find(|m| m["model"] == "glm-4.7").unwrap();
    assert!(glm47["cost"].as_f64().unwrap() > 0.0, "{daily}");
    app.shutdown().await;
}

async fn embedding_and_image_rows_are_priced(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = app
        .http
        .post(app.url("/v1/embeddings"))
        .bearer_auth(&key)
        .json(&json!({"model": "text-embedding-3-small", "input": ["one text", "two"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let row = row_of(&app.db, &request_id(&response)).await;
    assert_eq!(row.upstream_model.as_deref(), Some("embedding-3"));
    assert!(row.prompt_tokens > 0);
    assert_cost(&app, &row, Some(per_million(row.prompt_tokens, "0.5"))).await;
    let response = app
        .http
        .post(app.url("/v1/images/generations"))
        .bearer_auth(&key)
        .json(&json!({"model": "dall-e-3", "prompt": "a cat", "n": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let row = row_of(&app.db, &request_id(&response)).await;
    assert_eq!(row.upstream_model.as_deref(), Some("cogview-4-250304"));
    assert_eq!(row.image_count, 2);
    assert_cost(&app, &row, Some("0.12".parse().unwrap())).await;
    app.shutdown().await;
}

async fn a_configured_price_overrides_the_catalogue(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.prices = toml::from_str::<Prices>(
            "[[prices]]\nmodel = \"glm-4.6\"\nsince = \"2026-01-01\"\ninput = 2\noutput = 8\n\
             [[prices]]\nmodel = \"glm-4.6v\"\nsince = \"2026-09-24\"\ninput = 10\noutput = 10\n",
        )
        .unwrap()
        .prices;
    })
    .await;
    let key = app.key().await;
    let row = chat_row(&app, &key, "glm-4.6", "hello").await;
    let want = per_million(row.prompt_tokens, "2") + per_million(row.completion_tokens, "8");
    assert_cost(&app, &row, Some(want)).await;
    let row = chat_row(&app, &key, "gpt-4o", "hello").await;
    assert_cost(&app, &row, Some(per_million(row.total_tokens, "10"))).await;
    app.shutdown().await;
}

#[derive(serde::Deserialize)]
struct Prices {
    prices: Vec<glm_gateway::catalogue::ConfiguredPrice>,
}

/// About 1,000 prompt tokens: 0.001 CNY on glm-4.6v.
fn thousand_token_prompt() -> Value {
    json!({"model": "gpt-4o", "max_tokens": 10,
           "messages": [{"role": "user", "content": "word ".repeat(800)}]})
}

/// Sends until the first refusal; returns the admitted rows and the refusal's body.
async fn spend_until_refused(app: &TestApp, key: &str) -> (Vec<UsageRow>, Value) {
    let mut admitted = Vec::new();
    for _ in 0..20 {
        let response = app.chat(key, thousand_token_prompt()).await;
        if response.status() == 429 {
            assert_eq!(response.headers()["x-should-retry"], "false");
            return (admitted, error_of(response).await);
        }
        assert_eq!(response.status(), 200);
        admitted.push(row_of(&app.db, &request_id(&response)).await);
        // Settlement runs in the background; let it land before the next admission.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("20 requests admitted under a budget of a few");
}

async fn cost_budgets_refuse_gpt_4o_once_spent(backend: Backend) {
    let app = spawn_app(backend).await;
    let budget = 0.003;
    let key = app
        .create_key(json!({"name": "spender", "team": "alone", "cost_budget": budget}))
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (rows, error) = spend_until_refused(&app, &key).await;
    assert_eq!(error["code"], "insufficient_quota", "{error}");
    let costs: Vec<f64> = rows.iter().map(|r| r.cost.unwrap()).collect();
    let spent: f64 = costs.iter().sum();
    assert!(!rows.is_empty() && spent >= budget * 0.5, "{costs:?}");
    // The overshoot is at most one request.
    let largest = costs.iter().copied().fold(0.0, f64::max);
    assert!(spent <= budget + largest, "{spent} of {budget}: {costs:?}");

    // A team budget, shared by the team's keys, bites the same way.
    let response = app
        .http
        .put(app.url("/admin/teams/shared"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"cost_budget": budget}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut keys = Vec::new();
    for name in ["a", "b"] {
        let created = app
            .create_key(json!({"name": name, "team": "shared"}))
            .await;
        keys.push(created["key"].as_str().unwrap().to_owned());
    }
    let (first, _) = spend_until_refused(&app, &keys[0]).await;
    let (second, error) = spend_until_refused(&app, &keys[1]).await;
    assert_eq!(error["code"], "insufficient_quota", "{error}");
    let costs: Vec<f64> = first
        .iter()
        .chain(&second)
        .map(|r| r.cost.unwrap())
        .collect();
    let spent: f64 = costs.iter().sum();
    let largest = costs.iter().copied().fold(0.0, f64::max);
    assert!(spent <= budget + largest, "{spent} of {budget}: {costs:?}");
    assert!(
        second.len() <= 1,
        "the second key spent what the first had left: {costs:?}"
    );
    app.shutdown().await;
}

on_both_backends!(
    chat_rows_are_priced_by_tier,
    embedding_and_image_rows_are_priced,
    a_configured_price_overrides_the_catalogue,
    cost_budgets_refuse_gpt_4o_once_spent,
);
