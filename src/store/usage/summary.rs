//! Totals by team, key, model or endpoint from `usage_daily`, shaped as `/admin/usage` answers them.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::Deserialize;

use crate::store::Db;

/// A summary bound: a `YYYY-MM-DD` day, or the UTC day of an RFC 3339 time. Anything else
/// is refused (an error naming `field`), never read in part.
pub fn parse_day(field: &'static str, value: Option<&str>) -> Result<Option<NaiveDate>, String> {
    let Some(value) = value else { return Ok(None) };
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(value)
                .ok()
                .map(|at| at.with_timezone(&chrono::Utc).date_naive())
        });
    day.map(Some)
        .ok_or_else(|| format!("`{field}` must be a date like 2026-01-31."))
}

/// What `usage_summary` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageGroup {
    #[default]
    Team,
    Key,
    Model,
    Endpoint,
}

impl UsageGroup {
    /// The JSON key the group value is answered under.
    pub fn field(self) -> &'static str {
        match self {
            Self::Team => "team",
            Self::Key => "api_key_id",
            Self::Model => "model",
            Self::Endpoint => "endpoint",
        }
    }

    /// The summary statement: `$1` since and `$2` until, both optional.
    fn sql(self) -> &'static str {
        macro_rules! summary {
            ($column:literal) => {
                concat!(
                    "SELECT ",
                    $column,
                    " AS grp, CAST(SUM(requests) AS BIGINT) AS requests, \
                    CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
                    CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
                    CAST(SUM(total_tokens) AS BIGINT) AS total_tokens, \
                    CAST(SUM(cost) AS DOUBLE PRECISION) AS cost FROM usage_daily \
                    WHERE ($1 IS NULL OR day >= $1) AND ($2 IS NULL OR day <= $2) \
                    GROUP BY ",
                    $column,
                    " ORDER BY total_tokens DESC, grp"
                )
            };
        }
        match self {
            Self::Team => summary!("team"),
            Self::Key => summary!("api_key_id"),
            Self::Model => summary!("upstream_model"),
            Self::Endpoint => summary!("endpoint"),
        }
    }
}

impl FromStr for UsageGroup {
    type Err = UnknownUsageGroup;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "team" => Ok(Self::Team),
            "key" => Ok(Self::Key),
            "model" => Ok(Self::Model),
            "endpoint" => Ok(Self::Endpoint),
            other => Err(UnknownUsageGroup(other.to_owned())),
        }
    }
}

/// A `by` value other than `team`, `key`, `model` or `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownUsageGroup(pub String);

impl fmt::Display for UnknownUsageGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = &self.0;
        write!(
            f,
            "unknown grouping {by:?}: expected team, key, model or endpoint"
        )
    }
}

impl std::error::Error for UnknownUsageGroup {}

/// Totals of one team, key or upstream model ('' when none was named).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UsageSummary {
    #[sqlx(skip)]
    pub group: UsageGroup,
    /// The team, key id or upstream model.
    #[sqlx(rename = "grp")]
    pub name: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    /// `None` when no row of the group had a price.
    pub cost: Option<f64>,
}

/// `{"team"|"api_key_id"|"model": name, "requests", "prompt_tokens", "completion_tokens",
/// "total_tokens", "cost"}`, as the interface promises.
impl Serialize for UsageSummary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry(self.group.field(), &self.name)?;
        map.serialize_entry("requests", &self.requests)?;
        map.serialize_entry("prompt_tokens", &self.prompt_tokens)?;
        map.serialize_entry("completion_tokens", &self.completion_tokens)?;
        map.serialize_entry("total_tokens", &self.total_tokens)?;
        map.serialize_entry("cost", &self.cost)?;
        map.end()
    }
}

impl Db {
    /// Totals from `usage_daily` by team, key or upstream model for the days in
    /// `[since, until]`, the most tokens first.
    pub async fn usage_summary(
        &self,
        by: UsageGroup,
        since: Option<NaiveDate>,
        until: Option<NaiveDate>,
    ) -> Result<Vec<UsageSummary>, sqlx::Error> {
        let mut rows: Vec<UsageSummary> = on_pool!(self, |pool| sqlx::query_as(by.sql())
            .bind(since)
            .bind(until)
            .fetch_all(pool)
            .await)?;
        for row in &mut rows {
            row.group = by;
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod day_tests {
    use super::parse_day;

    #[test]
    fn days_are_whole_dates_or_rfc3339_times() {
        let day = |v| parse_day("since", Some(v));
        assert_eq!(
            day("2026-01-31").unwrap().unwrap().to_string(),
            "2026-01-31"
        );
        assert_eq!(
            day("2026-01-31T23:30:00-02:00")
                .unwrap()
                .unwrap()
                .to_string(),
            "2026-02-01"
        );
        for bad in ["2026-01-01garbage", "2026-13-01", "yesterday", ""] {
            assert!(day(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_day("until", None), Ok(None));
    }
}
