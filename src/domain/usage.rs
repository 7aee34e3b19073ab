//! One row of the usage ledger, as the request path makes it, the journal keeps it and the
//! store inserts it, and the sink the ledger's writer hands rows to.

use std::future::Future;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where the ledger's writer puts rows: the database, or a fake in tests.
pub trait UsageSink: Send + Sync + 'static {
    /// Inserts the rows (a row already present by `request_id` is skipped); returns how many
    /// were new.
    fn insert_usage<'a>(
        &'a self,
        events: &'a [UsageEvent],
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'a;
}

/// One row of `usage_events`, also one line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// The response's `x-request-id`; unique per row.
    pub request_id: String,
    /// When the request arrived.
    pub created_at: DateTime<Utc>,
    pub api_key_id: String,
    pub team: String,
    /// The path served, e.g. `/v1/chat/completions`.
    pub endpoint: String,
    /// The model the client named; `None` when the request was refused before one was read.
    pub requested_model: Option<String>,
    /// The GLM model sent upstream.
    pub upstream_model: Option<String>,
    pub streamed: bool,
    /// The HTTP status the client got (200 for a stream that ended in an error event, whose
    /// `error_code` then says what happened).
    pub status_code: u16,
    pub error_code: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    /// Prompt tokens served from Zhipu's cache (`prompt_tokens_details.cached_tokens`).
    pub cached_tokens: i64,
    pub image_count: i64,
    /// From arrival to the last byte of the answer.
    pub latency_ms: i64,
    pub usage_source: UsageSource,
    pub client_disconnected: bool,
    /// CNY, priced once from the model catalogue when the row is written; `None` when no
    /// price covers the model.
    pub cost: Option<Decimal>,
    /// What the gateway rewrote to keep a promise Zhipu cannot, and how the check went:
    /// `json_schema` or `tool_choice`, with `:repaired` or `:invalid` after a failed check.
    #[serde(default)]
    pub emulated: Option<String>,
    /// Only with `[usage] store_content = true`.
    pub prompt_text: Option<String>,
    pub completion_text: Option<String>,
}

/// Where a row's token counts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageSource {
    /// The upstream reported them.
    Upstream,
    /// The upstream produced (part of) an answer but reported no usage: counted from what was
    /// streamed and from the prompt.
    Estimated,
    /// No answer was produced (refused by the gateway, or an upstream error), so no tokens.
    None,
}

impl UsageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upstream => "upstream",
            Self::Estimated => "estimated",
            Self::None => "none",
        }
    }
}
