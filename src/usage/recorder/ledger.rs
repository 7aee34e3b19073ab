//! Where rows go: priced, made storable, then appended to the journal.

use std::sync::Arc;

use super::super::tap::{floor_char_boundary, MAX_CONTENT_BYTES};
use super::super::{Journal, PriceTable, UsageEvent};
use crate::telemetry::labels::ModelLabels;

/// Where rows go: priced, then appended to the journal. `None` journal: the ledger is off.
pub struct Ledger {
    journal: Option<Arc<Journal>>,
    prices: PriceTable,
    store_content: bool,
    limiter: Option<Arc<crate::limits::Limiter>>,
    pub(super) labels: ModelLabels,
}

impl Ledger {
    pub fn new(journal: Option<Arc<Journal>>, prices: PriceTable, store_content: bool) -> Self {
        Self {
            journal,
            prices,
            store_content,
            limiter: None,
            labels: ModelLabels::default(),
        }
    }

    /// How model names become metric labels (without: every name is `other`).
    pub fn with_labels(mut self, labels: ModelLabels) -> Self {
        self.labels = labels;
        self
    }

    /// Settles each recorded request's limit reservation.
    pub fn with_limiter(mut self, limiter: Arc<crate::limits::Limiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    pub fn journal(&self) -> Option<&Arc<Journal>> {
        self.journal.as_ref()
    }

    /// Whether a new request may be served: false only under `on_journal_full = "refuse"`
    /// while `[usage] memory_rows` rows the journal could not take wait in memory. Cheap.
    pub fn accepting(&self) -> bool {
        self.journal
            .as_ref()
            .is_none_or(|journal| journal.accepting())
    }

    pub fn stores_content(&self) -> bool {
        self.store_content
    }

    pub(super) fn record(&self, mut event: UsageEvent) {
        self.limiter
            .iter()
            .for_each(|limiter| limiter.settle(&event));
        let Some(journal) = &self.journal else { return };
        make_storable(&mut event);
        if let Some(model) = &event.upstream_model {
            event.cost = self.prices.cost(
                model,
                event.created_at,
                event.prompt_tokens,
                event.completion_tokens,
                event.image_count,
            );
        }
        journal.append(&event);
    }
}

/// Model names longer than this are cut in the row (a client may send anything).
const MAX_MODEL_CHARS: usize = 200;

/// Text from clients goes into the row, but Postgres refuses NUL characters in text, and one
/// refused row must not hold up the ledger: NULs are removed, model names kept short.
fn make_storable(event: &mut UsageEvent) {
    let texts = [
        &mut event.requested_model,
        &mut event.upstream_model,
        &mut event.error_code,
        &mut event.prompt_text,
        &mut event.completion_text,
    ];
    for text in texts.into_iter().flatten() {
        if text.contains('\0') {
            text.retain(|c| c != '\0');
        }
    }
    for text in [&mut event.requested_model, &mut event.upstream_model]
        .into_iter()
        .flatten()
    {
        if let Some((cut, _)) = text.char_indices().nth(MAX_MODEL_CHARS) {
            text.truncate(cut);
        }
    }
    for text in [&mut event.prompt_text, &mut event.completion_text]
        .into_iter()
        .flatten()
    {
        if text.len() > MAX_CONTENT_BYTES {
            text.truncate(floor_char_boundary(text, MAX_CONTENT_BYTES));
        }
    }
}
