//! Rows of the usage ledger: idempotent batch inserts, the daily partitions, retention into
//! `usage_rollups`, and the totals behind `/admin/usage` and `glm-gateway usage`.

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use sqlx::{PgPool, QueryBuilder, Sqlite, SqlitePool};

use super::Db;
use crate::domain::{UsageEvent, UsageSink};

mod summary;

pub use summary::{parse_day, UnknownUsageGroup, UsageGroup, UsageSummary};

impl UsageSink for Db {
    fn insert_usage<'a>(
        &'a self,
        events: &'a [UsageEvent],
    ) -> impl std::future::Future<Output = Result<u64, sqlx::Error>> + Send + 'a {
        Db::insert_usage(self, events)
    }
}

/// The columns every insert names, in the order values are bound.
macro_rules! event_columns {
    () => {
        "request_id, created_at, api_key_id, team, endpoint, requested_model, upstream_model, \
         streamed, status_code, error_code, prompt_tokens, completion_tokens, total_tokens, \
         cached_tokens, image_count, latency_ms, usage_source, client_disconnected, cost, \
         emulated, prompt_text, completion_text"
    };
}

/// Adds the totals of the rows `FROM …` per UTC day (`$day`), team, key, upstream model and
/// endpoint to
/// `usage_rollups`. A NULL cost means no price was known, so NULL + x keeps x.
macro_rules! rollup {
    ($day:literal, $($from:tt)+) => {
        concat!(
            "INSERT INTO usage_rollups (day, team, api_key_id, upstream_model, endpoint, \
             requests, prompt_tokens, completion_tokens, total_tokens, image_count, cost, errors) \
             SELECT ",
            $day,
            ", team, api_key_id, COALESCE(upstream_model, ''), endpoint, COUNT(*), SUM(prompt_tokens), \
             SUM(completion_tokens), SUM(total_tokens), SUM(image_count), SUM(cost), \
             SUM(CASE WHEN status_code >= 400 OR error_code IS NOT NULL THEN 1 ELSE 0 END)",
            $($from)+,
            " GROUP BY 1, 2, 3, 4, 5 ON CONFLICT (day, team, api_key_id, upstream_model, endpoint) \
             DO UPDATE SET \
             requests = usage_rollups.requests + excluded.requests, \
             prompt_tokens = usage_rollups.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = usage_rollups.completion_tokens + excluded.completion_tokens, \
             total_tokens = usage_rollups.total_tokens + excluded.total_tokens, \
             image_count = usage_rollups.image_count + excluded.image_count, \
             errors = usage_rollups.errors + excluded.errors, \
             cost = COALESCE(usage_rollups.cost + excluded.cost, usage_rollups.cost, excluded.cost)"
        )
    };
}

const PG_INSERT: &str = concat!(
    "INSERT INTO usage_events (",
    event_columns!(),
    ") SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::bool[], $9::int4[], $10::text[], $11::int8[], $12::int8[], \
     $13::int8[], $14::int8[], $15::int8[], $16::int8[], $17::text[], $18::bool[], \
     $19::text[]::numeric[], $20::text[], $21::text[], $22::text[]) ON CONFLICT DO NOTHING"
);

/// The columns a Postgres rollup reads from the rows it removes.
macro_rules! pg_gone_columns {
    () => {
        "created_at, team, api_key_id, upstream_model, endpoint, prompt_tokens, \
         completion_tokens, total_tokens, image_count, cost, status_code, error_code"
    };
}

/// Rolls up the rows of one day, `[$1, $2)`, which the caller then drops with their partition.
const PG_ROLLUP_DAY: &str = concat!(
    "WITH gone AS (SELECT ",
    pg_gone_columns!(),
    " FROM usage_events WHERE created_at >= $1 AND created_at < $2), rolled AS (",
    rollup!("(created_at AT TIME ZONE 'UTC')::date", " FROM gone"),
    ") SELECT COUNT(*) FROM gone"
);

/// Removes and rolls up, in one statement, the default partition's rows before `$1`.
const PG_ROLLUP_DEFAULT: &str = concat!(
    "WITH gone AS (DELETE FROM usage_events_default WHERE created_at < $1 RETURNING ",
    pg_gone_columns!(),
    "), rolled AS (",
    rollup!("(created_at AT TIME ZONE 'UTC')::date", " FROM gone"),
    ") SELECT COUNT(*) FROM gone"
);

/// The rows one SQLite retention batch removes: the oldest first, `rowid` making the order
/// total, so the rollup and the delete of one transaction read the same rows.
macro_rules! sqlite_batch {
    () => {
        " FROM usage_events WHERE rowid IN (SELECT rowid FROM usage_events \
         WHERE created_at < $1 ORDER BY created_at, rowid LIMIT $2)"
    };
}

const SQLITE_ROLLUP_BATCH: &str = rollup!("date(created_at)", sqlite_batch!());
const SQLITE_DELETE_BATCH: &str = concat!("DELETE", sqlite_batch!());

/// Rows per SQLite retention transaction, so writers are never held off for long.
const SQLITE_RETENTION_BATCH: i64 = 5000;

/// Rows per SQLite INSERT: 21 parameters each stays under the 999-parameter limit of older
/// SQLite builds.
const SQLITE_INSERT_CHUNK: usize = 40;

const PARTITION_PREFIX: &str = "usage_events_p";

/// `usage_events_pYYYYMMDD`: built from a date only, never from input.
fn partition_name(day: NaiveDate) -> String {
    format!("{PARTITION_PREFIX}{}", day.format("%Y%m%d"))
}

fn partition_day(name: &str) -> Option<NaiveDate> {
    let digits = name.strip_prefix(PARTITION_PREFIX)?;
    if digits.len() != 8 {
        return None;
    }
    NaiveDate::parse_from_str(digits, "%Y%m%d").ok()
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

fn next_day(day: NaiveDate) -> Result<NaiveDate, sqlx::Error> {
    day.checked_add_days(Days::new(1))
        .ok_or_else(|| sqlx::Error::Protocol(format!("no day after {day}")))
}

impl Db {
    /// Inserts rows, skipping request_ids already stored; returns the rows inserted. Postgres
    /// takes the batch in one statement over arrays; SQLite in one transaction of multi-row
    /// INSERTs.
    pub async fn insert_usage(&self, events: &[UsageEvent]) -> Result<u64, sqlx::Error> {
        if events.is_empty() {
            return Ok(0);
        }
        match self {
            Self::Postgres(pool) => insert_postgres(pool, events).await,
            Self::Sqlite(pool) => insert_sqlite(pool, events).await,
        }
    }

    /// Postgres: creates the daily partitions of `from..=to` that do not exist. A day the
    /// database refuses (e.g. the default partition already holds rows of it) is logged and
    /// skipped; its rows stay in the default partition. SQLite: nothing.
    pub async fn prepare_partitions(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(), sqlx::Error> {
        let Self::Postgres(pool) = self else {
            return Ok(());
        };
        let mut day = from;
        while day <= to {
            let next = next_day(day)?;
            let ddl = format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF usage_events \
                 FOR VALUES FROM ('{} 00:00:00+00') TO ('{} 00:00:00+00')",
                partition_name(day),
                day.format("%Y-%m-%d"),
                next.format("%Y-%m-%d"),
            );
            match sqlx::raw_sql(&ddl).execute(pool).await {
                Ok(_) => {}
                Err(sqlx::Error::Database(error)) => {
                    tracing::warn!(%day, %error, "usage partition not created; using the default");
                }
                Err(error) => return Err(error),
            }
            day = next;
        }
        Ok(())
    }

    /// Rolls every whole UTC day before `cutoff` up into `usage_rollups`, adding to totals
    /// already there, and removes those raw rows; returns the rows removed. Postgres drops
    /// daily partitions (one transaction each) and deletes the default partition's old rows in
    /// one statement; SQLite deletes in batches, each batch's rollup and removal in one
    /// transaction. `usage_daily` reads the same before and after.
    pub async fn apply_retention(&self, cutoff: NaiveDate) -> Result<u64, sqlx::Error> {
        match self {
            Self::Postgres(pool) => retention_postgres(pool, cutoff).await,
            Self::Sqlite(pool) => retention_sqlite(pool, cutoff).await,
        }
    }
}

fn column<'a, T>(events: &'a [UsageEvent], f: impl Fn(&'a UsageEvent) -> T) -> Vec<T> {
    events.iter().map(f).collect()
}

async fn insert_postgres(pool: &PgPool, events: &[UsageEvent]) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(PG_INSERT)
        .bind(column(events, |e| e.request_id.as_str()))
        .bind(column(events, |e| e.created_at))
        .bind(column(events, |e| e.api_key_id.as_str()))
        .bind(column(events, |e| e.team.as_str()))
        .bind(column(events, |e| e.endpoint.as_str()))
        .bind(column(events, |e| e.requested_model.as_deref()))
        .bind(column(events, |e| e.upstream_model.as_deref()))
        .bind(column(events, |e| e.streamed))
        .bind(column(events, |e| i32::from(e.status_code)))
        .bind(column(events, |e| e.error_code.as_deref()))
        .bind(column(events, |e| e.prompt_tokens))
        .bind(column(events, |e| e.completion_tokens))
        .bind(column(events, |e| e.total_tokens))
        .bind(column(events, |e| e.cached_tokens))
        .bind(column(events, |e| e.image_count))
        .bind(column(events, |e| e.latency_ms))
        .bind(column(events, |e| e.usage_source.as_str()))
        .bind(column(events, |e| e.client_disconnected))
        // Decimal text, cast to NUMERIC: exact, unlike a float.
        .bind(column(events, |e| e.cost.map(|c| c.to_string())))
        .bind(column(events, |e| e.emulated.as_deref()))
        .bind(column(events, |e| e.prompt_text.as_deref()))
        .bind(column(events, |e| e.completion_text.as_deref()))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

async fn insert_sqlite(pool: &SqlitePool, events: &[UsageEvent]) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut inserted = 0;
    for chunk in events.chunks(SQLITE_INSERT_CHUNK) {
        let mut insert: QueryBuilder<'_, Sqlite> = QueryBuilder::new(concat!(
            "INSERT INTO usage_events (",
            event_columns!(),
            ") "
        ));
        insert.push_values(chunk, |mut row, e| {
            row.push_bind(&e.request_id)
                .push_bind(e.created_at)
                .push_bind(&e.api_key_id)
                .push_bind(&e.team)
                .push_bind(&e.endpoint)
                .push_bind(&e.requested_model)
                .push_bind(&e.upstream_model)
                .push_bind(e.streamed)
                .push_bind(i32::from(e.status_code))
                .push_bind(&e.error_code)
                .push_bind(e.prompt_tokens)
                .push_bind(e.completion_tokens)
                .push_bind(e.total_tokens)
                .push_bind(e.cached_tokens)
                .push_bind(e.image_count)
                .push_bind(e.latency_ms)
                .push_bind(e.usage_source.as_str())
                .push_bind(e.client_disconnected)
                // Decimal text: the REAL column reads it as the nearest float.
                .push_bind(e.cost.map(|c| c.to_string()))
                .push_bind(&e.emulated)
                .push_bind(&e.prompt_text)
                .push_bind(&e.completion_text);
        });
        // Unlike `INSERT OR IGNORE`, this skips only duplicates, never a CHECK violation.
        insert.push(" ON CONFLICT (request_id) DO NOTHING");
        inserted += insert.build().execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    Ok(inserted)
}

async fn retention_postgres(pool: &PgPool, cutoff: NaiveDate) -> Result<u64, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'usage_events'::regclass",
    )
    .fetch_all(pool)
    .await?;
    let mut days: Vec<NaiveDate> = names
        .iter()
        .filter_map(|name| partition_day(name))
        .filter(|day| *day < cutoff)
        .collect();
    days.sort_unstable();

    let mut removed = 0;
    for day in days {
        let name = partition_name(day);
        let mut tx = pool.begin().await?;
        // Holds off inserts into the day (a replayed old row) between the rollup and the drop.
        sqlx::query(&format!("LOCK TABLE {name} IN EXCLUSIVE MODE"))
            .execute(&mut *tx)
            .await?;
        let rows: i64 = sqlx::query_scalar(PG_ROLLUP_DAY)
            .bind(midnight(day))
            .bind(midnight(next_day(day)?))
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(&format!("DROP TABLE {name}"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(%day, rows, "usage partition rolled up and dropped");
        removed += u64::try_from(rows).unwrap_or(0);
    }

    let rows: i64 = sqlx::query_scalar(PG_ROLLUP_DEFAULT)
        .bind(midnight(cutoff))
        .fetch_one(pool)
        .await?;
    Ok(removed + u64::try_from(rows).unwrap_or(0))
}

async fn retention_sqlite(pool: &SqlitePool, cutoff: NaiveDate) -> Result<u64, sqlx::Error> {
    // created_at is UTC RFC 3339 text, so every row of a day before `cutoff` sorts below it.
    let mut removed = 0;
    loop {
        let mut tx = pool.begin().await?;
        sqlx::query(SQLITE_ROLLUP_BATCH)
            .bind(cutoff)
            .bind(SQLITE_RETENTION_BATCH)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query(SQLITE_DELETE_BATCH)
            .bind(cutoff)
            .bind(SQLITE_RETENTION_BATCH)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        removed += deleted;
        if deleted < SQLITE_RETENTION_BATCH.unsigned_abs() {
            return Ok(removed);
        }
    }
}

#[cfg(test)]
mod tests;
