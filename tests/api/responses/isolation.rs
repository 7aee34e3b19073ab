//! Stored responses are seen only by the team (or key) that created them: anyone else gets the
//! 404 of an unknown id, and Zhipu never hears of the attempt. Owner rows go at their expiry.

use glm_gateway::store::Db;
use glm_gateway::usage::maintenance;
use serde_json::{json, Value};

use super::{call, create, upstream_calls};
use crate::helpers::{error_of, spawn_app, spawn_app_with, Backend};
use crate::on_both_backends;

async fn another_teams_response_is_unknown_and_never_reaches_zhipu(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.key().await;
    let teammate = app.key().await;
    let stranger = app.create_key(json!({"name": "b", "team": "b"})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let body: Value = create(&app, &owner, json!({"model": "gpt-4o", "input": "secret"}))
        .await
        .json()
        .await
        .unwrap();
    let id = body["id"].as_str().unwrap();
    let before = upstream_calls(&app);
    let unknown = "resp_20261130000000ffffffffffffffffffffffff";
    let cases = [
        (
            reqwest::Method::GET,
            format!("/v1/responses/{id}"),
            format!("/v1/responses/{unknown}"),
        ),
        (
            reqwest::Method::GET,
            format!("/v1/responses/{id}/input_items"),
            format!("/v1/responses/{unknown}/input_items"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/v1/responses/{id}"),
            format!("/v1/responses/{unknown}"),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/responses/{id}/cancel"),
            format!("/v1/responses/{unknown}/cancel"),
        ),
    ];
    for (method, foreign, never) in cases {
        let foreign = call(&app, &stranger, method.clone(), &foreign).await;
        assert_eq!(foreign.status(), 404, "{method} {id}");
        let foreign = error_of(foreign).await;
        let never = error_of(call(&app, &stranger, method, &never).await).await;
        assert_eq!(foreign["code"], never["code"]);
        assert_eq!(
            foreign["message"].as_str().unwrap().replace(id, unknown),
            never["message"]
        );
    }
    let chained = json!({"model": "gpt-4o", "input": "more", "previous_response_id": id});
    let response = create(&app, &stranger, chained.clone()).await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_of(response).await["param"], "previous_response_id");
    assert_eq!(
        upstream_calls(&app),
        before,
        "Zhipu saw none of team b's attempts"
    );

    let response = call(
        &app,
        &teammate,
        reqwest::Method::GET,
        &format!("/v1/responses/{id}"),
    )
    .await;
    assert_eq!(response.status(), 200, "keys of one team share by default");
    assert_eq!(create(&app, &teammate, chained).await.status(), 200);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sharing_only_the_creating_key_sees_a_response() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.responses.share_within_team = false).await;
    let (owner, teammate) = (app.key().await, app.key().await);
    let body: Value = create(&app, &owner, json!({"model": "gpt-4o", "input": "x"}))
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/v1/responses/{}", body["id"].as_str().unwrap());
    assert_eq!(
        call(&app, &teammate, reqwest::Method::GET, &path)
            .await
            .status(),
        404
    );
    assert_eq!(
        call(&app, &owner, reqwest::Method::GET, &path)
            .await
            .status(),
        200
    );
    app.shutdown().await;
}

/// Ages the owner row of `id` past its expiry.
async fn expire_owners(db: &Db, id: &str) {
    const SQL: &str = "UPDATE response_owners SET expires_at = $1 WHERE response_id = $2";
    let past = chrono::Utc::now() - chrono::Days::new(1);
    let changed = match db {
        Db::Postgres(pool) => {
            let done = sqlx::query(SQL).bind(past).bind(id).execute(pool).await;
            done.unwrap().rows_affected()
        }
        Db::Sqlite(pool) => {
            let done = sqlx::query(SQL).bind(past).bind(id).execute(pool).await;
            done.unwrap().rows_affected()
        }
    };
    assert_eq!(changed, 1);
}

async fn the_hourly_upkeep_removes_expired_owner_rows(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let body: Value = create(&app, &key, json!({"model": "gpt-4o", "input": "x"}))
            .await
            .json()
            .await
            .unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    maintenance::run_once(&app.db, None).await;
    assert!(
        app.db.response_owner(&ids[0]).await.unwrap().is_some(),
        "not expired yet"
    );
    expire_owners(&app.db, &ids[0]).await;
    maintenance::run_once(&app.db, None).await;
    assert_eq!(app.db.response_owner(&ids[0]).await.unwrap(), None);
    let path = format!("/v1/responses/{}", ids[0]);
    let gone = call(&app, &key, reqwest::Method::GET, &path).await;
    assert_eq!(gone.status(), 404);
    assert!(
        app.db.response_owner(&ids[1]).await.unwrap().is_some(),
        "the other stays"
    );
    app.shutdown().await;
}

on_both_backends!(
    another_teams_response_is_unknown_and_never_reaches_zhipu,
    the_hourly_upkeep_removes_expired_owner_rows,
);
