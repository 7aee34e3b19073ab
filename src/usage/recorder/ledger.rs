//! Where rows go: priced once from the catalogue, made storable, then appended to the journal.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use rust_decimal::Decimal;

use super::super::tap::{floor_char_boundary, MAX_CONTENT_BYTES};
use super::super::{Journal, UsageEvent};
use crate::catalogue::PriceBook;
use crate::domain::TokenCounts;
use crate::telemetry::labels::ModelLabels;

/// Unpriced models warned about, at most this many: clients may send any name.
const MAX_WARNED: usize = 256;

/// Where rows go: priced, then appended to the journal. `None` journal: the ledger is off.
pub struct Ledger {
    journal: Option<Arc<Journal>>,
    prices: PriceBook,
    store_content: bool,
    /// Upstream models seen without a price, each warned about once.
    unpriced: Mutex<HashSet<String>>,
    pub(super) labels: ModelLabels,
}

impl Ledger {
    pub fn new(journal: Option<Arc<Journal>>, prices: PriceBook, store_content: bool) -> Self {
        Self {
            journal,
            prices,
            store_content,
            unpriced: Mutex::default(),
            labels: ModelLabels::default(),
        }
    }

    /// How model names become metric labels (without: every name is `other`).
    pub fn with_labels(mut self, labels: ModelLabels) -> Self {
        self.labels = labels;
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

    /// What the row cost, from the price in force on its day; `None` (and a warning, once
    /// per model) when no price covers its model. A row that reached no model costs nothing.
    pub(super) fn price(&self, event: &UsageEvent) -> Option<Decimal> {
        let model = event.upstream_model.as_deref()?;
        let counts = TokenCounts {
            prompt: event.prompt_tokens,
            cached: event.cached_tokens,
            completion: event.completion_tokens,
            images: event.image_count,
        };
        let cost = self.prices.cost(model, event.created_at, &counts);
        if cost.is_none() {
            self.warn_unpriced(model);
        }
        cost
    }

    fn warn_unpriced(&self, model: &str) {
        let mut warned = self.unpriced.lock().unwrap_or_else(PoisonError::into_inner);
        if warned.len() >= MAX_WARNED || warned.contains(model) {
            return;
        }
        warned.insert(model.to_owned());
        drop(warned);
        tracing::warn!(
            model = ?crate::telemetry::ClientText(model),
            "no price covers this model: its ledger rows have cost NULL and cost budgets do \
             not count them; add a [[prices]] entry"
        );
    }

    /// Appends a priced row to the journal.
    pub(super) fn record(&self, mut event: UsageEvent) {
        let Some(journal) = &self.journal else { return };
        make_storable(&mut event);
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
