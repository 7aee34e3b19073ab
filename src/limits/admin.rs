//! Team budgets: one implementation behind `PUT/GET /admin/teams` and `glm-gateway teams`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BudgetPeriod, TeamBudget};
use crate::error::ApiError;
use crate::keys::admin::validate_limits;
use crate::store::{Db, TeamRecord};

/// The body of `PUT /admin/teams/{team}` and the flags of `glm-gateway teams set TEAM`. It
/// replaces the team's budgets: a budget left out is cleared.
#[derive(Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct SetTeam {
    /// Tokens all of the team's keys together may use per budget period.
    #[arg(long)]
    pub token_budget: Option<i64>,
    /// CNY all of the team's keys together may spend per budget period.
    #[arg(long)]
    pub cost_budget: Option<f64>,
    /// When the budgets start over: none (never), daily or monthly (UTC).
    #[arg(long, value_enum)]
    pub budget_period: Option<BudgetPeriod>,
}

#[derive(Debug, Serialize)]
pub struct TeamView {
    pub team: String,
    pub token_budget: Option<i64>,
    pub cost_budget: Option<f64>,
    pub budget_period: BudgetPeriod,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&TeamRecord> for TeamView {
    fn from(record: &TeamRecord) -> Self {
        Self {
            team: record.team.clone(),
            token_budget: record.token_budget,
            cost_budget: record.cost_budget,
            budget_period: BudgetPeriod::parse(&record.budget_period),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

impl From<&TeamView> for TeamBudget {
    fn from(view: &TeamView) -> Self {
        Self {
            token_budget: view.token_budget,
            cost_budget: view.cost_budget,
            period: view.budget_period,
        }
    }
}

/// Validates and stores a team's budgets.
pub async fn set_team(db: &Db, team: &str, request: SetTeam) -> Result<TeamView, ApiError> {
    let team = team.trim();
    if team.is_empty() || team.len() > 200 {
        return Err(ApiError::invalid_request("`team` must be 1 to 200 characters.").param("team"));
    }
    validate_limits(
        [None, None, request.token_budget],
        request.cost_budget,
        None,
    )?;
    let period = request.budget_period.unwrap_or_default();
    let record = db
        .upsert_team(
            team,
            request.token_budget,
            request.cost_budget,
            period.as_str(),
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(TeamView::from(&record))
}

pub async fn list_teams(db: &Db) -> Result<Vec<TeamView>, sqlx::Error> {
    Ok(db.list_teams().await?.iter().map(TeamView::from).collect())
}

/// Every team's budgets, for the limiter's reloads.
pub async fn team_budgets(db: &Db) -> Result<HashMap<String, TeamBudget>, sqlx::Error> {
    Ok(list_teams(db)
        .await?
        .iter()
        .map(|view| (view.team.clone(), TeamBudget::from(view)))
        .collect())
}
