//! Which price applies to a row: the catalogue's dated prices plus `[[prices]]` from the
//! configuration, looked up by upstream model and the request's UTC date.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::DatedPrice;
use crate::domain::{Price, PriceTier, TokenCounts};

/// One dated price for a model name or a `prefix*` pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceEntry {
    /// Lowercase; without the trailing `*` of a prefix pattern.
    pattern: String,
    prefix: bool,
    pub since: NaiveDate,
    pub price: Price,
    /// Where the price was read (a catalogue source key), or `configuration`.
    pub source: String,
    /// From configuration: beats a built-in entry with the same pattern and date.
    configured: bool,
}

/// A `[[prices]]` entry of the configuration. Amounts are CNY per million tokens (`input`,
/// `output`, `cached`, or `tiers` as in the catalogue) and per image; `prompt_per_1k` and
/// `completion_per_1k` are the older per-thousand form, still read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredPrice {
    /// A GLM model name, or a `prefix*` pattern.
    pub model: String,
    pub since: NaiveDate,
    #[serde(default, deserialize_with = "crate::domain::amount")]
    pub input: Decimal,
    #[serde(default, deserialize_with = "crate::domain::amount")]
    pub output: Decimal,
    #[serde(default, deserialize_with = "crate::domain::optional_amount")]
    pub cached: Option<Decimal>,
    #[serde(default)]
    pub tiers: Vec<PriceTier>,
    #[serde(default, deserialize_with = "crate::domain::amount")]
    pub per_image: Decimal,
    #[serde(default, deserialize_with = "crate::domain::amount")]
    pub prompt_per_1k: Decimal,
    #[serde(default, deserialize_with = "crate::domain::amount")]
    pub completion_per_1k: Decimal,
}

impl ConfiguredPrice {
    /// The price it states; `Err` names what is wrong with it.
    pub fn price(&self) -> Result<Price, String> {
        if self.model.trim().is_empty() {
            return Err("needs a model name".into());
        }
        let thousand = Decimal::from(1000);
        let flat = PriceTier {
            prompt_below: None,
            output_below: None,
            input: self.input + self.prompt_per_1k * thousand,
            output: self.output + self.completion_per_1k * thousand,
            cached: self.cached,
        };
        let tiers = if self.tiers.is_empty() {
            vec![flat]
        } else if flat.amounts() != (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO) {
            return Err("give either `tiers` or flat amounts, not both".into());
        } else {
            self.tiers.clone()
        };
        let price = Price {
            tiers,
            per_image: self.per_image,
        };
        match price.problem() {
            Some(problem) => Err(problem.into()),
            None => Ok(price),
        }
    }
}

impl PriceEntry {
    fn new(model: &str, since: NaiveDate, price: Price, source: &str, configured: bool) -> Self {
        let model = model.to_ascii_lowercase();
        let (pattern, prefix) = match model.strip_suffix('*') {
            Some(stem) => (stem.to_owned(), true),
            None => (model, false),
        };
        Self {
            pattern,
            prefix,
            since,
            price,
            source: source.to_owned(),
            configured,
        }
    }

    pub(super) fn builtin(model: &str, dated: &DatedPrice) -> Result<Self, String> {
        let price = dated.price();
        if let Some(problem) = price.problem() {
            return Err(format!(
                "model catalogue: {model} from {}: {problem}",
                dated.since
            ));
        }
        Ok(Self::new(model, dated.since, price, &dated.source, false))
    }

    /// The name or pattern it prices, as written (lowercase, `*` for a prefix).
    pub fn model(&self) -> String {
        if self.prefix {
            format!("{}*", self.pattern)
        } else {
            self.pattern.clone()
        }
    }

    /// How closely the entry names `model` (lowercase): an exact name beats any prefix, a
    /// longer prefix a shorter one; `None` when it does not match.
    fn specificity(&self, model: &str) -> Option<usize> {
        if self.prefix {
            model
                .starts_with(&self.pattern)
                .then_some(self.pattern.len())
        } else {
            (model == self.pattern).then_some(usize::MAX)
        }
    }
}

/// The price in force for a model on a day, and where it comes from.
#[derive(Debug, Clone, Copy)]
pub struct PricedAt<'a> {
    pub entry: &'a PriceEntry,
}

/// Every price the gateway charges by.
#[derive(Debug, Clone)]
pub struct PriceBook {
    entries: Vec<PriceEntry>,
}

impl PriceBook {
    /// The catalogue's prices with `configured` on top. Each configured entry must be valid
    /// (`ConfiguredPrice::price`); one that is not is left out (the configuration refuses
    /// such a file before this is reached).
    pub fn new(builtin: &[PriceEntry], configured: &[ConfiguredPrice]) -> Self {
        let configured = configured.iter().filter_map(|c| {
            let price = c.price().ok()?;
            Some(PriceEntry::new(
                &c.model,
                c.since,
                price,
                "configuration",
                true,
            ))
        });
        Self {
            entries: builtin.iter().cloned().chain(configured).collect(),
        }
    }

    /// The built-in catalogue's prices alone.
    pub fn builtin() -> Self {
        Self::new(super::Catalogue::builtin().prices(), &[])
    }

    /// The entry pricing `model` on `day`: among those in force (`since` on or before it),
    /// the most specific pattern, then the latest `since`, then configuration over the
    /// catalogue.
    pub fn in_force(&self, model: &str, day: NaiveDate) -> Option<PricedAt<'_>> {
        let model = model.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|e| e.since <= day)
            .filter_map(|e| Some((e.specificity(&model)?, e.since, e.configured, e)))
            .max_by_key(|(specificity, since, configured, _)| (*specificity, *since, *configured))
            .map(|(_, _, _, entry)| PricedAt { entry })
    }

    /// What a request cost; `None` when no price covers the model at that time.
    pub fn cost(&self, model: &str, at: DateTime<Utc>, counts: &TokenCounts) -> Option<Decimal> {
        self.in_force(model, at.date_naive())
            .map(|priced| priced.entry.price.cost(counts))
    }

    /// The names and patterns priced, each once, in order.
    pub fn models(&self) -> impl Iterator<Item = String> + '_ {
        let mut seen = std::collections::HashSet::new();
        self.entries
            .iter()
            .map(PriceEntry::model)
            .filter(move |m| seen.insert(m.clone()))
    }
}

#[cfg(test)]
mod tests;
