//! `glm-gateway keys update` and `glm-gateway teams`: limits and budgets from the command line,
//! through the same code as the admin API.

use clap::Subcommand;

use super::{open_db, say};
use crate::config::Config;
use crate::keys::update::{update_key, UpdateKey};
use crate::limits::admin::{list_teams, set_team, SetTeam};
use crate::store::Db;

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// Set (replace) a team's budgets, shared by all of its keys.
    Set {
        team: String,
        #[command(flatten)]
        budgets: SetTeam,
    },
    /// List team budgets.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// `keys update ID [...]`: prints the key as `PATCH /admin/keys/{id}` answers.
pub async fn update(db: &Db, id: &str, change: UpdateKey) -> anyhow::Result<()> {
    let (view, _) = update_key(db, id, change)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    say(format_args!("{}", serde_json::to_string_pretty(&view)?));
    Ok(())
}

pub async fn teams(config: &Config, command: TeamsCommand) -> anyhow::Result<()> {
    let db = open_db(config).await?;
    match command {
        TeamsCommand::Set { team, budgets } => {
            let view = set_team(&db, &team, budgets)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            say(format_args!("{}", serde_json::to_string_pretty(&view)?));
        }
        TeamsCommand::List { json } => {
            let teams = list_teams(&db).await?;
            if json {
                say(format_args!("{}", serde_json::to_string_pretty(&teams)?));
            } else {
                say(format_args!(
                    "{:<24} {:>14} {:>14} PERIOD",
                    "TEAM", "TOKEN BUDGET", "COST (CNY)"
                ));
                for team in &teams {
                    let tokens = team.token_budget.map_or("-".into(), |t| t.to_string());
                    let cost = team.cost_budget.map_or("-".into(), |c| c.to_string());
                    say(format_args!(
                        "{:<24} {:>14} {:>14} {}",
                        team.team,
                        tokens,
                        cost,
                        team.budget_period.as_str()
                    ));
                }
            }
        }
    }
    db.close().await;
    Ok(())
}
