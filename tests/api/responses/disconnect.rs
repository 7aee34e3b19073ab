//! A Responses stream whose client leaves is still read to its end, so its row has the
//! upstream's usage, as for chat.

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::create;
use crate::helpers::{request_id, row_of, spawn_app, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_stream_still_gets_the_full_usage() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.key().await;
    let plain: Value = create(
        &app,
        &key,
        json!({"model": "gpt-4o", "input": "#chunks 8 #slow 100"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let request = json!({"model": "gpt-4o", "input": "#chunks 8 #slow 100", "stream": true});
    let response = create(&app, &key, request).await;
    let id = request_id(&response);
    let mut body = response.bytes_stream();
    body.next().await.unwrap().unwrap();
    drop(body);
    let row = row_of(&app.db, &id).await;
    assert!(row.client_disconnected, "{row:?}");
    assert_eq!(row.usage_source, "upstream");
    assert_eq!(
        row.completion_tokens,
        plain["usage"]["output_tokens"].as_i64().unwrap()
    );
    assert_eq!(
        row.prompt_tokens,
        plain["usage"]["input_tokens"].as_i64().unwrap()
    );
    app.shutdown().await;
}
