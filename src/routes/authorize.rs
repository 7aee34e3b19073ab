//! The authorize step every model endpoint starts with: the model the key may use, then the
//! key's and team's limits for what the request may spend. Both are noted on the ticket.

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::keys::ApiKey;
use crate::limits::Admission;
use crate::state::AppState;
use crate::usage::{Prompt, UsageTicket};

/// Resolves the model the client named, notes both names for the row, and checks the key may
/// use it.
pub fn authorize_model(
    state: &AppState,
    key: &ApiKey,
    ticket: &UsageTicket,
    requested: &str,
) -> ApiResult<String> {
    if requested.trim().is_empty() {
        return Err(
            ApiError::invalid_request("You must provide a model parameter.").param("model"),
        );
    }
    let upstream = state.config.models.resolve(requested);
    ticket.set_models(requested, upstream);
    if !key.allows_model(requested, upstream) {
        return Err(ApiError::new(
            ErrorCode::ModelNotAllowed,
            format!("This API key may not use the model `{requested}`."),
        )
        .param("model"));
    }
    Ok(upstream.to_owned())
}

/// What a request may spend, before it goes upstream.
pub struct Spend {
    pub prompt: Prompt,
    /// The most it may generate (`max_tokens`); `None`: the configured default.
    pub completion: Option<i64>,
    pub images: i64,
}

impl Spend {
    /// A prompt and up to `completion` generated tokens.
    pub fn tokens(prompt: Prompt, completion: Option<i64>) -> Self {
        Self {
            prompt,
            completion,
            images: 0,
        }
    }

    /// `count` images from a prompt (no tokens generated).
    pub fn images(prompt: Prompt, count: usize) -> Self {
        Self {
            prompt,
            completion: Some(0),
            images: i64::try_from(count).unwrap_or(i64::MAX),
        }
    }
}

/// Notes the prompt on the ticket and reserves the request's estimate against the key's and
/// team's limits, leaving the reservation with the ticket (its row settles it); a refusal is
/// the 429 the client gets (and its row).
pub async fn admit(
    state: &AppState,
    key: &ApiKey,
    ticket: &UsageTicket,
    model: &str,
    spend: Spend,
) -> ApiResult<Admission> {
    let estimate = state
        .limits
        .estimate(model, spend.prompt.chars, spend.completion, spend.images);
    ticket.set_prompt(spend.prompt);
    let (admission, reservation) = state
        .limits
        .admit(ticket.request_id(), key, estimate)
        .await?;
    ticket.hold(reservation);
    Ok(admission)
}
