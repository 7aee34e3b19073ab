//! What a row cost, in CNY: built-in GLM prices with their effective dates, plus the entries
//! from `[[usage.prices]]`, which win over a built-in one of the same model and date.

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::PriceEntry;

/// Prices looked up by upstream model and the request's UTC date.
#[derive(Debug, Clone)]
pub struct PriceTable {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    /// Lowercase; without the trailing `*` of a prefix pattern.
    pattern: String,
    prefix: bool,
    since: NaiveDate,
    prompt_per_1k: f64,
    completion_per_1k: f64,
    per_image: f64,
    /// From configuration: beats a built-in entry with the same pattern and date.
    configured: bool,
}

/// (model, since, prompt per 1K tokens, completion per 1K tokens, per image).
type Builtin = (&'static str, (i32, u32, u32), f64, f64, f64);

const LAUNCH_2024: (i32, u32, u32) = (2024, 1, 16);
const SNAPSHOT_2025: (i32, u32, u32) = (2025, 2, 1);
const PRICING_2026: (i32, u32, u32) = (2026, 9, 24);

const BUILTIN: &[Builtin] = &[
    // Early 2024, input and output priced the same: one-api's ratios before 36a03f46, and the
    // official pricing as quoted at wpsshop.cn (zhipu-api.md §10).
    ("glm-4", LAUNCH_2024, 0.1, 0.1, 0.0),
    ("glm-4v", LAUNCH_2024, 0.1, 0.1, 0.0),
    ("glm-3-turbo", LAUNCH_2024, 0.005, 0.005, 0.0),
    // Embedding-2 is billed on input only (Zhipu's pricing FAQ).
    ("embedding-2", LAUNCH_2024, 0.0005, 0.0, 0.0),
    ("cogview-3", LAUNCH_2024, 0.0, 0.0, 0.25),
    // A January 2024 launch article; no second source found.
    ("charglm-3", LAUNCH_2024, 0.015, 0.015, 0.0),
    // Snapshot of open.bigmodel.cn/pricing, February 2025, as one-api 36a03f46 cites it.
    ("glm-4-plus", SNAPSHOT_2025, 0.05, 0.05, 0.0),
    ("glm-4-0520", SNAPSHOT_2025, 0.1, 0.1, 0.0),
    ("glm-4-airx", SNAPSHOT_2025, 0.01, 0.01, 0.0),
    ("glm-4-air", SNAPSHOT_2025, 0.0005, 0.0005, 0.0),
    ("glm-4-long", SNAPSHOT_2025, 0.001, 0.001, 0.0),
    ("glm-4-flashx", SNAPSHOT_2025, 0.0001, 0.0001, 0.0),
    ("glm-4-flash", SNAPSHOT_2025, 0.0, 0.0, 0.0),
    ("glm-4", SNAPSHOT_2025, 0.1, 0.1, 0.0),
    // Cut from 0.005.
    ("glm-3-turbo", SNAPSHOT_2025, 0.001, 0.001, 0.0),
    ("glm-4v-plus", SNAPSHOT_2025, 0.004, 0.004, 0.0),
    // Cut from 0.1.
    ("glm-4v", SNAPSHOT_2025, 0.05, 0.05, 0.0),
    ("glm-4v-flash", SNAPSHOT_2025, 0.0, 0.0, 0.0),
    ("cogview-3-plus", SNAPSHOT_2025, 0.0, 0.0, 0.06),
    // Cut from 0.25 per image.
    ("cogview-3", SNAPSHOT_2025, 0.0, 0.0, 0.1),
    ("cogview-3-flash", SNAPSHOT_2025, 0.0, 0.0, 0.0),
    ("charglm-4", SNAPSHOT_2025, 0.001, 0.001, 0.0),
    ("emohaa", SNAPSHOT_2025, 0.015, 0.015, 0.0),
    // Input only; the model page today reads 0.5 CNY per million tokens, the same.
    ("embedding-2", SNAPSHOT_2025, 0.0005, 0.0, 0.0),
    ("embedding-3", SNAPSHOT_2025, 0.0005, 0.0, 0.0),
    // The official pricing page as transcribed 2026-09-24 (zhipu-api.md §11): CogView-4 per
    // image; cogview-3-flash stays free.
    ("cogview-4", PRICING_2026, 0.0, 0.0, 0.06),
    ("cogview-4-250304", PRICING_2026, 0.0, 0.0, 0.06),
    ("embedding-2", PRICING_2026, 0.0005, 0.0, 0.0),
];

impl Entry {
    fn new(model: &str, since: NaiveDate, amounts: [f64; 3], configured: bool) -> Self {
        let model = model.to_ascii_lowercase();
        let (pattern, prefix) = match model.strip_suffix('*') {
            Some(stem) => (stem.to_owned(), true),
            None => (model, false),
        };
        let [prompt_per_1k, completion_per_1k, per_image] = amounts;
        Self {
            pattern,
            prefix,
            since,
            prompt_per_1k,
            completion_per_1k,
            per_image,
            configured,
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

impl PriceTable {
    /// The built-in prices with `extra` (from configuration) on top.
    pub fn new(extra: &[PriceEntry]) -> Self {
        let builtin = BUILTIN.iter().filter_map(|(model, (y, m, d), p, c, i)| {
            let since = NaiveDate::from_ymd_opt(*y, *m, *d)?;
            Some(Entry::new(model, since, [*p, *c, *i], false))
        });
        let configured = extra.iter().map(|e| {
            let amounts = [e.prompt_per_1k, e.completion_per_1k, e.per_image];
            Entry::new(&e.model, e.since, amounts, true)
        });
        Self {
            entries: builtin.chain(configured).collect(),
        }
    }

    /// The models priced by their exact name (lowercase).
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|e| !e.prefix)
            .map(|e| e.pattern.as_str())
    }

    /// The cost of a row; `None` when no entry covers the model at that time. Among the
    /// entries in force on the row's UTC date (`since` on or before it), the most specific
    /// pattern wins, then the latest `since`, then configuration over the built-in table.
    pub fn cost(
        &self,
        model: &str,
        at: DateTime<Utc>,
        prompt_tokens: i64,
        completion_tokens: i64,
        images: i64,
    ) -> Option<f64> {
        let model = model.to_ascii_lowercase();
        let day = at.date_naive();
        let entry = self
            .entries
            .iter()
            .filter(|e| e.since <= day)
            .filter_map(|e| Some((e.specificity(&model)?, e.since, e.configured, e)))
            .max_by_key(|(specificity, since, configured, _)| (*specificity, *since, *configured))
            .map(|(_, _, _, e)| e)?;
        Some(
            prompt_tokens as f64 / 1000.0 * entry.prompt_per_1k
                + completion_tokens as f64 / 1000.0 * entry.completion_per_1k
                + images as f64 * entry.per_image,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

    use super::*;

    fn at(date: &str) -> DateTime<Utc> {
        format!("{date}T12:00:00Z").parse().unwrap()
    }

    fn price(model: &str, since: &str, prompt: f64, completion: f64, image: f64) -> PriceEntry {
        PriceEntry {
            model: model.into(),
            prompt_per_1k: prompt,
            completion_per_1k: completion,
            per_image: image,
            since: since.parse().unwrap(),
        }
    }

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.unwrap();
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    #[test]
    fn launch_prices_apply_from_2024_01_16() {
        let table = PriceTable::new(&[]);
        close(table.cost("glm-4", at("2024-06-01"), 1000, 1000, 0), 0.2);
        close(
            table.cost("glm-3-turbo", at("2024-01-16"), 2000, 0, 0),
            0.01,
        );
        close(
            table.cost("charglm-3", at("2024-03-01"), 1000, 1000, 0),
            0.03,
        );
        close(table.cost("cogview-3", at("2024-03-01"), 0, 0, 2), 0.5);
        assert_eq!(table.cost("glm-4", at("2024-01-15"), 1000, 0, 0), None);
    }

    #[test]
    fn embeddings_are_billed_on_input_only() {
        let table = PriceTable::new(&[]);
        close(
            table.cost("embedding-2", at("2024-06-01"), 2000, 500, 0),
            0.001,
        );
        close(
            table.cost("embedding-3", at("2025-03-01"), 2000, 500, 0),
            0.001,
        );
        assert_eq!(
            table.cost("embedding-3", at("2025-01-31"), 2000, 0, 0),
            None
        );
    }

    #[test]
    fn the_2025_snapshot_replaces_the_launch_prices() {
        let table = PriceTable::new(&[]);
        close(
            table.cost("glm-3-turbo", at("2025-01-31"), 1000, 0, 0),
            0.005,
        );
        close(
            table.cost("glm-3-turbo", at("2025-02-01"), 1000, 0, 0),
            0.001,
        );
        close(table.cost("glm-4v", at("2025-02-01"), 1000, 1000, 0), 0.1);
        close(table.cost("cogview-3", at("2025-02-01"), 0, 0, 3), 0.3);
        close(
            table.cost("cogview-3-plus", at("2025-06-01"), 0, 0, 1),
            0.06,
        );
        close(
            table.cost("glm-4-plus", at("2025-06-01"), 10_000, 2_000, 0),
            0.6,
        );
        close(
            table.cost("glm-4-air", at("2025-06-01"), 1000, 1000, 0),
            0.001,
        );
        for free in ["glm-4-flash", "glm-4v-flash", "cogview-3-flash"] {
            close(table.cost(free, at("2025-06-01"), 5000, 5000, 1), 0.0);
        }
    }

    #[test]
    fn the_day_is_the_utc_date() {
        let table = PriceTable::new(&[]);
        let late: DateTime<Utc> = "2025-01-31T23:59:59Z".parse().unwrap();
        close(table.cost("glm-4v", late, 1000, 0, 0), 0.1);
        let early: DateTime<Utc> = "2025-02-01T00:00:00+08:00".parse().unwrap();
        close(table.cost("glm-4v", early, 1000, 0, 0), 0.1);
    }

    #[test]
    fn unknown_models_have_no_price() {
        let table = PriceTable::new(&[]);
        assert_eq!(table.cost("glm-5", at("2026-01-01"), 1000, 1000, 0), None);
        // An exact entry never matches a longer name.
        assert_eq!(
            table.cost("glm-4-9b", at("2026-01-01"), 1000, 1000, 0),
            None
        );
    }

    #[test]
    fn exact_names_beat_prefixes_and_longer_prefixes_win() {
        let extra = [
            price("glm-4*", "2025-01-01", 1.0, 1.0, 0.0),
            price("glm-4.5*", "2025-01-01", 2.0, 3.0, 0.0),
        ];
        let table = PriceTable::new(&extra);
        close(
            table.cost("glm-4.5-air", at("2025-06-01"), 1000, 1000, 0),
            5.0,
        );
        close(table.cost("glm-4-9b", at("2025-06-01"), 1000, 1000, 0), 2.0);
        close(
            table.cost("glm-4-plus", at("2025-06-01"), 1000, 1000, 0),
            0.1,
        );
        // Before the snapshot glm-4-plus has no exact entry, so the prefix covers it.
        close(
            table.cost("glm-4-plus", at("2025-01-15"), 1000, 1000, 0),
            2.0,
        );
    }

    #[test]
    fn the_latest_entry_in_force_applies() {
        let extra = [
            price("glm-5", "2026-01-01", 4.0, 18.0, 0.0),
            price("glm-5", "2026-06-01", 2.0, 9.0, 0.0),
        ];
        let table = PriceTable::new(&extra);
        assert_eq!(table.cost("glm-5", at("2025-12-31"), 1000, 1000, 0), None);
        close(table.cost("glm-5", at("2026-05-31"), 1000, 1000, 0), 22.0);
        close(table.cost("glm-5", at("2026-06-01"), 1000, 1000, 0), 11.0);
    }

    #[test]
    fn configuration_beats_a_builtin_entry_of_the_same_date() {
        let extra = [price("glm-4-plus", "2025-02-01", 0.2, 0.4, 0.0)];
        let table = PriceTable::new(&extra);
        close(
            table.cost("glm-4-plus", at("2025-06-01"), 1000, 1000, 0),
            0.6,
        );
        // An older configured entry does not hide a newer built-in one.
        let extra = [price("glm-4-plus", "2025-01-01", 0.2, 0.4, 0.0)];
        let table = PriceTable::new(&extra);
        close(
            table.cost("glm-4-plus", at("2025-06-01"), 1000, 1000, 0),
            0.1,
        );
    }

    #[test]
    fn matching_ignores_case() {
        let table = PriceTable::new(&[price("GLM-Z1*", "2025-01-01", 1.0, 0.0, 0.0)]);
        close(table.cost("GLM-4", at("2024-06-01"), 1000, 0, 0), 0.1);
        close(table.cost("glm-z1-air", at("2025-06-01"), 1000, 0, 0), 1.0);
    }
}
