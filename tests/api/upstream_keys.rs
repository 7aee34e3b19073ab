//! The upstream key pool: a key Zhipu rejects is taken out, and the other keys carry on.

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
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(app.chat(&key, ask()).await.status().as_u16());
        }
        statuses
    };
    // Round-robin: the second call used the unknown key; after that only the good one is used.
    assert_eq!(
        statuses.iter().filter(|s| **s != 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses[1], 502, "{statuses:?}");
}
