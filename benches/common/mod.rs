//! What more than one benchmark needs.

use chrono::Utc;
use glm_gateway::usage::{UsageEvent, UsageSource};

/// A ledger row of a successful chat request, varied by `i` (request id, key, team, streamed).
pub fn usage_event(i: usize) -> UsageEvent {
    UsageEvent {
        request_id: format!("{:032x}", i),
        created_at: Utc::now(),
        api_key_id: format!("key{}", i % 50),
        team: format!("team{}", i % 7),
        endpoint: "/v1/chat/completions".into(),
        requested_model: Some("gpt-4o".into()),
        upstream_model: Some("glm-4.6v".into()),
        streamed: i.is_multiple_of(2),
        status_code: 200,
        error_code: None,
        prompt_tokens: 120,
        completion_tokens: 80,
        total_tokens: 200,
        cached_tokens: 0,
        image_count: 0,
        latency_ms: 900,
        usage_source: UsageSource::Upstream,
        client_disconnected: false,
        cost: Some(rust_decimal::Decimal::new(4, 4)),
        prompt_text: None,
        emulated: None,
        completion_text: None,
    }
}
