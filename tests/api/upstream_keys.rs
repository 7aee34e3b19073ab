//! The upstream key pool: a key Zhipu rejects is taken out, the call is tried again on another
//! key, and the other keys carry on.

use glm_gateway::config::Secret;
use serde_json::json;

use crate::helpers::{spawn_app_with, Backend, UPSTREAM_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_upstream_key_is_taken_out_of_turn() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.zhipu.api_keys = vec![
            Secret::new(UPSTREAM_KEY.to_owned()),
            Secret::new("unknown-id.unknown-secret-0123456789".to_owned()),
        ];
    })
    .await;
    let key = app.key().await;
    let ask = || json!({"model": "glm-4.7", "messages": [{"role": "user", "content": "hi"}]});
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.chat(&key, ask()).await.status().as_u16());
    }
    // The call that met the unknown key was retried on the good one; no client saw the 401.
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.emulator.request_count(), 7);
    let ready = app.get_json("/readyz").await;
    assert_eq!(
        ready["upstream_keys"],
        json!([
            {"id": "test-upstream-id", "state": "ok", "until": null},
            {"id": "unknown-id", "state": "out", "until": ready["upstream_keys"][1]["until"]},
        ]),
        "{ready}"
    );
    assert!(ready["upstream_keys"][1]["until"].is_string());
}
