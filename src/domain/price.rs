//! A price as Zhipu states one: CNY per million tokens for input, cached input and output,
//! in tiers chosen by the prompt's length (cached tokens included) and, for some models, the
//! output's; plus a price per image. Amounts are decimals, so a month of rows sums exactly.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

/// What a row is priced on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// All prompt tokens, the cached ones included.
    pub prompt: i64,
    /// Prompt tokens served from Zhipu's cache.
    pub cached: i64,
    pub completion: i64,
    pub images: i64,
}

/// One price in force: its tiers, first match wins (the last one has no bounds), and the
/// price of an image.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(default)]
    pub tiers: Vec<PriceTier>,
    #[serde(default, deserialize_with = "amount")]
    pub per_image: Decimal,
}

/// The per-million-token prices for requests under its bounds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTier {
    /// Applies to prompts (cached tokens included) of fewer tokens than this.
    #[serde(default)]
    pub prompt_below: Option<i64>,
    /// And to outputs of fewer tokens than this.
    #[serde(default)]
    pub output_below: Option<i64>,
    #[serde(default, deserialize_with = "amount")]
    pub input: Decimal,
    #[serde(default, deserialize_with = "amount")]
    pub output: Decimal,
    /// Cached prompt tokens; `None`: the input price.
    #[serde(default, deserialize_with = "optional_amount")]
    pub cached: Option<Decimal>,
}

const MILLION: i64 = 1_000_000;

impl PriceTier {
    fn covers(&self, counts: &TokenCounts) -> bool {
        self.prompt_below.is_none_or(|below| counts.prompt < below)
            && self
                .output_below
                .is_none_or(|below| counts.completion < below)
    }

    /// The amounts, for display: (input, output, cached).
    pub fn amounts(&self) -> (Decimal, Decimal, Decimal) {
        (self.input, self.output, self.cached.unwrap_or(self.input))
    }
}

impl Price {
    /// The tier that prices `counts`: the first that covers them, else the last.
    pub fn tier(&self, counts: &TokenCounts) -> Option<&PriceTier> {
        self.tiers
            .iter()
            .find(|tier| tier.covers(counts))
            .or(self.tiers.last())
    }

    /// What a request with these counts costs, in CNY.
    pub fn cost(&self, counts: &TokenCounts) -> Decimal {
        let images = Decimal::from(counts.images.max(0)) * self.per_image;
        let Some(tier) = self.tier(counts) else {
            return images;
        };
        let prompt = counts.prompt.max(0);
        let cached = counts.cached.clamp(0, prompt);
        let (input, output, cached_price) = tier.amounts();
        let tokens = Decimal::from(prompt - cached) * input
            + Decimal::from(cached) * cached_price
            + Decimal::from(counts.completion.max(0)) * output;
        tokens / Decimal::from(MILLION) + images
    }

    /// Why the price is unusable, if it is: a negative amount, or bounded tiers only.
    pub fn problem(&self) -> Option<&'static str> {
        let negative = self.per_image.is_sign_negative()
            || self.tiers.iter().any(|t| {
                let (input, output, cached) = t.amounts();
                [input, output, cached]
                    .iter()
                    .any(Decimal::is_sign_negative)
            });
        if negative {
            return Some("amounts must not be negative");
        }
        match self.tiers.last() {
            Some(last) if last.prompt_below.is_some() || last.output_below.is_some() => {
                Some("the last tier must have no `prompt_below` or `output_below`")
            }
            _ => None,
        }
    }
}

/// An amount written as a TOML number or string: a number is read by its shortest decimal
/// form (`0.4` is 0.4, not the binary float nearest it).
pub fn amount<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Amount {
        Int(i64),
        Float(f64),
        Text(String),
    }
    let text = match Amount::deserialize(deserializer)? {
        Amount::Int(n) => return Ok(Decimal::from(n)),
        Amount::Float(f) if f.is_finite() => f.to_string(),
        Amount::Float(f) => return Err(serde::de::Error::custom(format!("{f} is not an amount"))),
        Amount::Text(text) => text,
    };
    text.trim()
        .parse::<Decimal>()
        .map_err(|e| serde::de::Error::custom(format!("`{text}` is not an amount: {e}")))
}

/// `amount`, for an optional field.
pub fn optional_amount<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    amount(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

    use super::*;

    fn glm_4_7() -> Price {
        toml::from_str(
            r#"tiers = [
                { prompt_below = 32000, output_below = 200, input = 2, output = 8, cached = 0.4 },
                { prompt_below = 32000, input = 3, output = 14, cached = 0.6 },
                { input = 4, output = 16, cached = 0.8 },
            ]"#,
        )
        .unwrap()
    }

    fn counts(prompt: i64, cached: i64, completion: i64) -> TokenCounts {
        TokenCounts {
            prompt,
            cached,
            completion,
            images: 0,
        }
    }

    #[test]
    fn tiers_follow_prompt_and_output_length() {
        let price = glm_4_7();
        // 1000 in, 100 out: 1000 * 2 + 100 * 8 = 2800 per million.
        assert_eq!(price.cost(&counts(1000, 0, 100)), "0.0028".parse().unwrap());
        // 199 out is still the cheap tier, 200 is not.
        assert_eq!(price.tier(&counts(1000, 0, 199)).unwrap().input, 2.into());
        assert_eq!(price.tier(&counts(1000, 0, 200)).unwrap().input, 3.into());
        // 32000 prompt tokens, cached ones included, is the top tier.
        assert_eq!(
            price.tier(&counts(32_000, 31_000, 10)).unwrap().input,
            4.into()
        );
        assert_eq!(
            price.cost(&counts(40_000, 10_000, 1000)),
            "0.144".parse().unwrap()
        );
    }

    #[test]
    fn cached_tokens_without_a_cached_price_cost_the_input_price() {
        let price: Price = toml::from_str("tiers = [{ input = 0.5 }]").unwrap();
        assert_eq!(price.cost(&counts(2000, 1000, 0)), "0.001".parse().unwrap());
    }

    #[test]
    fn amounts_are_exact_decimals() {
        let price: Price = toml::from_str(r#"tiers = [{ input = 0.1, output = "0.2" }]"#).unwrap();
        let one = price.cost(&counts(1, 0, 1));
        let mut sum = Decimal::ZERO;
        for _ in 0..1_000_000 {
            sum += one;
        }
        assert_eq!(sum, "0.3".parse().unwrap());
    }

    #[test]
    fn images_are_priced_per_image() {
        let price: Price = toml::from_str("per_image = 0.06").unwrap();
        assert_eq!(
            price.cost(&TokenCounts {
                images: 3,
                ..TokenCounts::default()
            }),
            "0.18".parse().unwrap()
        );
    }

    #[test]
    fn bounded_last_tiers_and_negative_amounts_are_problems() {
        let bounded: Price = toml::from_str("tiers = [{ prompt_below = 10, input = 1 }]").unwrap();
        assert!(bounded.problem().is_some());
        let negative: Price = toml::from_str("tiers = [{ input = -1 }]").unwrap();
        assert!(negative.problem().is_some());
        assert_eq!(glm_4_7().problem(), None);
    }
}
