//! What a finished row tells the operator: one access line (target `glm_gateway::access`) and
//! the row's metrics (tokens by team and model; a stream's duration). Emitted once, by the
//! ticket that writes the row.

use std::sync::Arc;

use metrics::SharedString;

use super::{Pending, UsageEvent};
use crate::telemetry::labels::OTHER;
use crate::telemetry::series::{self, millis, Tokens};
use crate::telemetry::{ClientText, ACCESS_TARGET};

impl Pending {
    pub(super) fn report(&self, event: &UsageEvent, reasoning: i64) {
        let team = SharedString::from(Arc::clone(&self.key.team));
        let model = self
            .model_labels
            .get()
            .map_or(OTHER, |(_, model)| model.clone());
        let tokens = Tokens {
            prompt: event.prompt_tokens,
            completion: event.completion_tokens,
            cached: event.cached_tokens,
            reasoning,
        };
        if tokens.prompt > 0 || tokens.completion > 0 {
            series::tokens_counted(&team, &model, &tokens);
        }
        let clock = self.clock.as_deref();
        if let Some(clock) = clock.filter(|_| event.streamed) {
            series::stream_ended(clock);
        }
        let upstream = clock.and_then(|clock| match event.streamed {
            true => clock.upstream_to_now(),
            false => clock.upstream(),
        });
        tracing::info!(
            target: ACCESS_TARGET,
            request_id = %event.request_id,
            key = %event.api_key_id,
            team = ?ClientText(&event.team),
            endpoint = %event.endpoint,
            alias = ?ClientText(event.requested_model.as_deref().unwrap_or_default()),
            model = ?ClientText(event.upstream_model.as_deref().unwrap_or_default()),
            status = event.status_code,
            error_code = event.error_code.as_deref().unwrap_or_default(),
            streamed = event.streamed,
            prompt_tokens = event.prompt_tokens,
            completion_tokens = event.completion_tokens,
            cached_tokens = event.cached_tokens,
            reasoning_tokens = reasoning,
            usage_source = event.usage_source.as_str(),
            latency_ms = event.latency_ms,
            upstream_ms = upstream.map(millis),
            client_disconnected = event.client_disconnected,
            "request"
        );
    }
}
