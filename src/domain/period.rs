//! Budget periods: UTC calendar days and months. A budget's spent counter is kept per period
//! start, so a new period starts from zero without anything having to reset it.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// How often a budget starts over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    /// Never: the budget is for the whole life of the key or team.
    #[default]
    None,
    /// Each UTC calendar day.
    Daily,
    /// Each UTC calendar month.
    Monthly,
}

impl BudgetPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Daily => "daily",
            Self::Monthly => "monthly",
        }
    }

    /// Reads the stored text; anything unknown counts as `none`.
    pub fn parse(text: &str) -> Self {
        match text {
            "daily" => Self::Daily,
            "monthly" => Self::Monthly,
            _ => Self::None,
        }
    }

    /// The start of the period holding `now`, in Unix seconds (0 for `none`).
    pub fn start(self, now: DateTime<Utc>) -> i64 {
        match self {
            Self::None => 0,
            Self::Daily => midnight(now.date_naive()),
            Self::Monthly => {
                NaiveDate::from_ymd_opt(now.year(), now.month(), 1).map_or(0, midnight)
            }
        }
    }

    /// The start of the next period in Unix seconds, `None` for `none`.
    pub fn next_start(self, now: DateTime<Utc>) -> Option<i64> {
        match self {
            Self::None => None,
            Self::Daily => now.date_naive().succ_opt().map(midnight),
            Self::Monthly => {
                let (year, month) = match now.month() {
                    12 => (now.year() + 1, 1),
                    month => (now.year(), month + 1),
                };
                NaiveDate::from_ymd_opt(year, month, 1).map(midnight)
            }
        }
    }

    /// How long a spent counter must be kept: a little over one period (0: forever).
    pub fn counter_ttl_secs(self) -> i64 {
        match self {
            Self::None => 0,
            Self::Daily => 2 * 86_400,
            Self::Monthly => 40 * 86_400,
        }
    }
}

fn midnight(day: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn a_daily_budget_starts_over_at_utc_midnight() {
        let late = at("2026-11-30T23:59:59Z");
        let next = at("2026-12-01T00:00:00Z");
        assert_eq!(
            BudgetPeriod::Daily.start(late),
            at("2026-11-30T00:00:00Z").timestamp()
        );
        assert_eq!(BudgetPeriod::Daily.start(next), next.timestamp());
        assert_ne!(
            BudgetPeriod::Daily.start(late),
            BudgetPeriod::Daily.start(next)
        );
        assert_eq!(BudgetPeriod::Daily.next_start(late), Some(next.timestamp()));
        // A time zone ahead of UTC does not move the period.
        let tokyo = DateTime::parse_from_rfc3339("2026-12-01T08:00:00+09:00")
            .unwrap()
            .to_utc();
        assert_eq!(
            BudgetPeriod::Daily.start(tokyo),
            BudgetPeriod::Daily.start(late)
        );
    }

    #[test]
    fn a_monthly_budget_starts_over_on_the_first_including_in_january() {
        let december = at("2026-12-31T12:00:00Z");
        assert_eq!(
            BudgetPeriod::Monthly.start(december),
            at("2026-12-01T00:00:00Z").timestamp()
        );
        assert_eq!(
            BudgetPeriod::Monthly.next_start(december),
            Some(at("2027-01-01T00:00:00Z").timestamp())
        );
        assert_eq!(
            BudgetPeriod::Monthly.start(at("2027-01-01T00:00:00Z")),
            at("2027-01-01T00:00:00Z").timestamp()
        );
    }

    #[test]
    fn without_a_period_the_budget_never_starts_over() {
        assert_eq!(BudgetPeriod::None.start(at("2026-01-01T00:00:00Z")), 0);
        assert_eq!(BudgetPeriod::None.start(at("2030-06-01T00:00:00Z")), 0);
        assert_eq!(BudgetPeriod::None.next_start(Utc::now()), None);
        assert_eq!(BudgetPeriod::parse("weekly"), BudgetPeriod::None);
        assert_eq!(BudgetPeriod::parse("monthly"), BudgetPeriod::Monthly);
    }
}
