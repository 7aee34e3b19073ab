//! Rows of `response_owners`: which key and team created each stored response, so that only
//! they see it. A row past `expires_at` still guards its id until the hourly upkeep deletes it.

use chrono::{DateTime, Utc};

use super::Db;

/// Zhipu keeps stored responses for days; the row outlives them a little, so an id is never
/// taken for unknown (and so nobody's) while Zhipu may still serve it.
pub const OWNER_TTL_DAYS: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ResponseOwner {
    pub api_key_id: String,
    pub team: String,
    pub expires_at: DateTime<Utc>,
}

impl Db {
    /// Records the owner of a response; a second record of the same id keeps the first.
    pub async fn insert_response_owner(
        &self,
        response_id: &str,
        api_key_id: &str,
        team: &str,
    ) -> Result<(), sqlx::Error> {
        const SQL: &str =
            "INSERT INTO response_owners (response_id, api_key_id, team, created_at, \
            expires_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (response_id) DO NOTHING";
        let now = Utc::now();
        let expires_at = now + chrono::Days::new(OWNER_TTL_DAYS);
        on_pool!(self, |pool| sqlx::query(SQL)
            .bind(response_id)
            .bind(api_key_id)
            .bind(team)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(drop))
    }

    pub async fn response_owner(
        &self,
        response_id: &str,
    ) -> Result<Option<ResponseOwner>, sqlx::Error> {
        const SQL: &str =
            "SELECT api_key_id, team, expires_at FROM response_owners WHERE response_id = $1";
        on_pool!(self, |pool| sqlx::query_as(SQL)
            .bind(response_id)
            .fetch_optional(pool)
            .await)
    }

    /// Removes the owner row of a deleted response; true if there was one.
    pub async fn delete_response_owner(&self, response_id: &str) -> Result<bool, sqlx::Error> {
        const SQL: &str = "DELETE FROM response_owners WHERE response_id = $1";
        on_pool!(self, |pool| sqlx::query(SQL)
            .bind(response_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected() > 0))
    }

    /// Deletes the rows that expired before `now`; how many.
    pub async fn purge_response_owners(&self, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        const SQL: &str = "DELETE FROM response_owners WHERE expires_at < $1";
        on_pool!(self, |pool| sqlx::query(SQL)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
    }
}
