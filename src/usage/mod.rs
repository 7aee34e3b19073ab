//! The usage ledger: one row per authenticated request in `usage_events`. The request path
//! appends the row to a local journal and moves on; a background writer moves journal rows into
//! the database in batches, idempotently by `request_id`, so no row is lost to a crash, a
//! database outage or a shutdown.

mod journal;
pub mod maintenance;
mod reader;
mod recorder;
mod tap;
mod writer;

pub use journal::{
    encode as journal_line, Journal, JournalOptions, LedgerHealth, SetAside, FOREIGN_DIR, ID_FILE,
    REJECTED_FILE,
};
pub use recorder::{track_usage, Ledger, StreamEnd, UsageTicket};
pub use tap::{Prompt, Tap, TokenUsage};
pub use writer::{run_writer, WriterSettings};

pub use crate::domain::{UsageEvent, UsageSink, UsageSource};
