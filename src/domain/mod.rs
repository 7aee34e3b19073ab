//! The types every layer shares: a ledger row and its token counts, prices, budget periods,
//! key limits and the claims limits are kept with. A leaf: nothing here imports the rest of
//! the crate, so any module may use it without making a cycle.

mod limits;
mod period;
mod price;
mod tokens;
mod usage;

pub use limits::{fits, Claim, Estimate, Hold, KeyLimits, Refusal, TeamBudget, WindowCount};
pub use period::BudgetPeriod;
pub use price::{amount, optional_amount, Price, PriceTier, TokenCounts};
pub use tokens::TokenUsage;
pub use usage::{UsageEvent, UsageSink, UsageSource};
