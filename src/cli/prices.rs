//! `glm-gateway prices`: the prices in force today, from the catalogue and `[[prices]]`, as an
//! operator checks them before trusting a dashboard.

use std::fmt::Write as _;

use chrono::Utc;
use serde_json::{json, Value};

use crate::catalogue::{Catalogue, PricedAt};
use crate::config::Config;

/// One line (or JSON object) per model the catalogue or the configuration prices today.
pub fn run(config: &Config, model: Option<&str>, json: bool) -> anyhow::Result<()> {
    let book = config.price_book();
    let today = Utc::now().date_naive();
    let names: Vec<String> = match model {
        Some(model) => vec![model.to_owned()],
        None => book.models().filter(|m| !m.ends_with('*')).collect(),
    };
    let rows: Vec<Value> = names
        .iter()
        .filter_map(|name| {
            let priced = book.in_force(name, today)?;
            Some(row(name, priced))
        })
        .collect();
    if let (Some(model), true) = (model, rows.is_empty()) {
        anyhow::bail!("no price covers `{model}` today: its rows have cost NULL");
    }
    if json {
        super::say(format_args!("{}", json!({ "data": rows })));
        return Ok(());
    }
    let mut out = format!(
        "{:<20} {:<10} {:>12} {:>12} {:>12} {:>10}  {:<28} {}\n",
        "MODEL", "SINCE", "INPUT/M", "OUTPUT/M", "CACHED/M", "PER IMAGE", "TIER", "SOURCE"
    );
    for row in &rows {
        for tier in row["tiers"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "{:<20} {:<10} {:>12} {:>12} {:>12} {:>10}  {:<28} {}",
                text(&row["model"]),
                text(&row["since"]),
                text(&tier["input"]),
                text(&tier["output"]),
                text(&tier["cached"]),
                text(&row["per_image"]),
                text(&tier["applies"]),
                text(&row["source"]).split(':').next().unwrap_or_default(),
            );
        }
    }
    out.push_str("CNY; token prices per million tokens.");
    super::say(format_args!("{out}"));
    Ok(())
}

fn row(name: &str, priced: PricedAt<'_>) -> Value {
    let entry = priced.entry;
    let tiers: Vec<Value> = if entry.price.tiers.is_empty() {
        vec![json!({"input": "0", "output": "0", "cached": "0", "applies": "images only"})]
    } else {
        entry
            .price
            .tiers
            .iter()
            .map(|tier| {
                let (input, output, cached) = tier.amounts();
                let applies = match (tier.prompt_below, tier.output_below) {
                    (None, None) => "any".to_owned(),
                    (Some(p), None) => format!("prompt < {p}"),
                    (None, Some(o)) => format!("output < {o}"),
                    (Some(p), Some(o)) => format!("prompt < {p}, output < {o}"),
                };
                json!({"input": input.to_string(), "output": output.to_string(),
                       "cached": cached.to_string(), "applies": applies})
            })
            .collect()
    };
    let source = Catalogue::builtin().source(&entry.source).map_or_else(
        || entry.source.clone(),
        |s| format!("{}: {s}", entry.source),
    );
    json!({
        "model": name,
        "since": entry.since.to_string(),
        "per_image": entry.price.per_image.to_string(),
        "tiers": tiers,
        "source": source,
    })
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}
