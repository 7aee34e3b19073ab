#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use super::*;
use crate::catalogue::Catalogue;

fn at(date: &str) -> DateTime<Utc> {
    format!("{date}T12:00:00Z").parse().unwrap()
}

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn tokens(prompt: i64, completion: i64) -> TokenCounts {
    TokenCounts {
        prompt,
        completion,
        ..TokenCounts::default()
    }
}

fn images(images: i64) -> TokenCounts {
    TokenCounts {
        images,
        ..TokenCounts::default()
    }
}

/// A configured flat price, CNY per million tokens.
fn price(model: &str, since: &str, input: &str, output: &str) -> ConfiguredPrice {
    toml::from_str(&format!(
        "model = \"{model}\"\nsince = \"{since}\"\ninput = \"{input}\"\noutput = \"{output}\""
    ))
    .unwrap()
}

#[test]
fn launch_prices_apply_from_2024_01_16() {
    let book = PriceBook::builtin();
    assert_eq!(
        book.cost("glm-4", at("2024-06-01"), &tokens(1000, 1000)),
        Some(d("0.2"))
    );
    assert_eq!(
        book.cost("glm-3-turbo", at("2024-01-16"), &tokens(2000, 0)),
        Some(d("0.01"))
    );
    assert_eq!(
        book.cost("charglm-3", at("2024-03-01"), &tokens(1000, 1000)),
        Some(d("0.03"))
    );
    assert_eq!(
        book.cost("cogview-3", at("2024-03-01"), &images(2)),
        Some(d("0.5"))
    );
    assert_eq!(book.cost("glm-4", at("2024-01-15"), &tokens(1000, 0)), None);
}

#[test]
fn embeddings_are_billed_on_input_only() {
    let book = PriceBook::builtin();
    let two_thousand = tokens(2000, 500);
    assert_eq!(
        book.cost("embedding-2", at("2024-06-01"), &two_thousand),
        Some(d("0.001"))
    );
    assert_eq!(
        book.cost("embedding-3", at("2025-03-01"), &two_thousand),
        Some(d("0.001"))
    );
    assert_eq!(
        book.cost("embedding-3", at("2026-12-01"), &two_thousand),
        Some(d("0.001"))
    );
    assert_eq!(
        book.cost("embedding-3", at("2025-01-31"), &tokens(2000, 0)),
        None
    );
}

#[test]
fn the_2025_snapshot_replaces_the_launch_prices() {
    let book = PriceBook::builtin();
    assert_eq!(
        book.cost("glm-3-turbo", at("2025-01-31"), &tokens(1000, 0)),
        Some(d("0.005"))
    );
    assert_eq!(
        book.cost("glm-3-turbo", at("2025-02-01"), &tokens(1000, 0)),
        Some(d("0.001"))
    );
    assert_eq!(
        book.cost("glm-4v", at("2025-02-01"), &tokens(1000, 1000)),
        Some(d("0.1"))
    );
    assert_eq!(
        book.cost("cogview-3", at("2025-02-01"), &images(3)),
        Some(d("0.3"))
    );
    assert_eq!(
        book.cost("cogview-3-plus", at("2025-06-01"), &images(1)),
        Some(d("0.06"))
    );
    assert_eq!(
        book.cost("glm-4-plus", at("2025-06-01"), &tokens(10_000, 2_000)),
        Some(d("0.6"))
    );
    for free in ["glm-4-flash", "glm-4v-flash"] {
        assert_eq!(
            book.cost(free, at("2025-06-01"), &tokens(5000, 5000)),
            Some(d("0"))
        );
    }
    assert_eq!(
        book.cost("cogview-3-flash", at("2025-06-01"), &images(1)),
        Some(d("0"))
    );
}

#[test]
fn the_2026_prices_tier_by_prompt_and_output() {
    let book = PriceBook::builtin();
    let now = at("2026-12-01");
    // glm-4.7: 2/8 below 32K in and 0.2K out, 3/14 below 32K in, 4/16 above.
    assert_eq!(
        book.cost("glm-4.7", now, &tokens(1000, 100)),
        Some(d("0.0028"))
    );
    assert_eq!(
        book.cost("glm-4.7", now, &tokens(1000, 300)),
        Some(d("0.0072"))
    );
    assert_eq!(
        book.cost("glm-4.7", now, &tokens(40_000, 300)),
        Some(d("0.1648"))
    );
    // glm-5.1 with cached tokens: 9,000 at 6, 1,000 at 1.3, 500 out at 24.
    let cached = TokenCounts {
        prompt: 10_000,
        cached: 1_000,
        completion: 500,
        images: 0,
    };
    assert_eq!(book.cost("glm-5.1", now, &cached), Some(d("0.0673")));
    // What gpt-4o maps to.
    assert_eq!(
        book.cost("glm-4.6v", now, &tokens(1000, 1000)),
        Some(d("0.004"))
    );
    assert_eq!(
        book.cost("cogview-4-250304", now, &images(2)),
        Some(d("0.12"))
    );
    // Before the 2026 list the gateway has no source for these.
    assert_eq!(
        book.cost("glm-4.7", at("2026-09-23"), &tokens(1000, 100)),
        None
    );
}

#[test]
fn the_day_is_the_utc_date() {
    let book = PriceBook::builtin();
    let late: DateTime<Utc> = "2025-01-31T23:59:59Z".parse().unwrap();
    assert_eq!(book.cost("glm-4v", late, &tokens(1000, 0)), Some(d("0.1")));
    let early: DateTime<Utc> = "2025-02-01T00:00:00+08:00".parse().unwrap();
    assert_eq!(book.cost("glm-4v", early, &tokens(1000, 0)), Some(d("0.1")));
}

#[test]
fn unknown_models_have_no_price() {
    let book = PriceBook::builtin();
    assert_eq!(
        book.cost("glm-4.6", at("2026-12-01"), &tokens(1000, 1000)),
        None
    );
    // An exact entry never matches a longer name.
    assert_eq!(
        book.cost("glm-4-9b", at("2026-01-01"), &tokens(1000, 1000)),
        None
    );
}

#[test]
fn exact_names_beat_prefixes_and_longer_prefixes_win() {
    let configured = [
        price("glm-4*", "2025-01-01", "1000", "1000"),
        price("glm-4.5*", "2025-01-01", "2000", "3000"),
    ];
    let book = PriceBook::new(Catalogue::builtin().prices(), &configured);
    let thousand = tokens(1000, 1000);
    assert_eq!(
        book.cost("glm-4.5-air", at("2025-06-01"), &thousand),
        Some(d("5"))
    );
    assert_eq!(
        book.cost("glm-4-9b", at("2025-06-01"), &thousand),
        Some(d("2"))
    );
    assert_eq!(
        book.cost("glm-4-plus", at("2025-06-01"), &thousand),
        Some(d("0.1"))
    );
    // Before the snapshot glm-4-plus has no exact entry, so the prefix covers it.
    assert_eq!(
        book.cost("glm-4-plus", at("2025-01-15"), &thousand),
        Some(d("2"))
    );
}

#[test]
fn the_latest_entry_in_force_applies_and_configuration_wins_a_tie() {
    let configured = [
        price("glm-4.6", "2026-01-01", "4", "18"),
        price("glm-4.6", "2026-06-01", "2", "9"),
        price("glm-4.6v", "2026-09-24", "10", "10"),
    ];
    let book = PriceBook::new(Catalogue::builtin().prices(), &configured);
    let million = tokens(1_000_000, 1_000_000);
    assert_eq!(book.cost("glm-4.6", at("2025-12-31"), &million), None);
    assert_eq!(
        book.cost("glm-4.6", at("2026-05-31"), &million),
        Some(d("22"))
    );
    assert_eq!(
        book.cost("glm-4.6", at("2026-06-01"), &million),
        Some(d("11"))
    );
    assert_eq!(
        book.cost("glm-4.6v", at("2026-12-01"), &million),
        Some(d("20"))
    );
    let priced = book
        .in_force("glm-4.6v", at("2026-12-01").date_naive())
        .unwrap();
    assert_eq!(priced.entry.source, "configuration");
}

#[test]
fn the_per_thousand_form_still_reads() {
    let old: ConfiguredPrice = toml::from_str(
        "model = \"glm-z1\"\nsince = \"2025-01-01\"\nprompt_per_1k = 0.002\ncompletion_per_1k = 0.008",
    )
    .unwrap();
    let book = PriceBook::new(&[], &[old]);
    assert_eq!(
        book.cost("GLM-Z1", at("2025-06-01"), &tokens(1000, 1000)),
        Some(d("0.01"))
    );
}

#[test]
fn bad_configured_prices_say_why() {
    let negative = price("glm-x", "2025-01-01", "-1", "0");
    assert!(negative.price().unwrap_err().contains("negative"));
    let both: ConfiguredPrice =
        toml::from_str("model = \"m\"\nsince = \"2025-01-01\"\ninput = 1\ntiers = [{ input = 2 }]")
            .unwrap();
    assert!(both.price().unwrap_err().contains("not both"));
    assert!(price(" ", "2025-01-01", "1", "1").price().is_err());
}
