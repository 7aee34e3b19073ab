#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use super::*;

#[test]
fn the_builtin_catalogue_parses() {
    Catalogue::check_builtin().unwrap();
    assert!(Catalogue::builtin().names().count() > 40);
}

#[test]
fn every_current_alias_target_and_listed_model_is_known() {
    let catalogue = Catalogue::builtin();
    for (_, target) in catalogue.aliases() {
        let entry = catalogue.exact.get(target).unwrap();
        assert!(entry.listed && !entry.retired, "{target}");
    }
    for name in catalogue.listed() {
        assert!(catalogue.model(name).known, "{name}");
    }
}

#[test]
fn family_rules_fill_what_a_model_does_not_say() {
    let c = Catalogue::builtin();
    assert_eq!(c.model("glm-4.5-air").max_output, 98_304);
    assert_eq!(c.model("glm-4.5-air").responses_max_output, 98_304);
    assert_eq!(c.model("glm-4.5").responses_max_output, 131_072);
    assert_eq!(c.model("glm-4.5v").responses_max_output, 16_384);
    assert_eq!(c.model("glm-4.6v-flash").responses_max_output, 32_768);
    assert_eq!(c.model("glm-4v-plus").responses_max_output, 16_384);
    assert_eq!(c.model("charglm-4").max_output, 4096);
    assert_eq!(c.model("glm-4").max_output, 8192);
    assert_eq!(c.model("glm-4v").max_output, 8192);
    assert_eq!(c.model("glm-4v-plus").max_output, 131_072);
    assert_eq!(c.model("glm-4.7").max_output, 131_072);
    // The 2024 generation's open interval for temperature.
    for legacy in [
        "glm-4",
        "glm-4-flash",
        "glm-4v",
        "glm-3-turbo",
        "emohaa",
        "codegeex-4",
    ] {
        assert_eq!(c.model(legacy).temperature_max, 0.99, "{legacy}");
    }
    for new in [
        "glm-4.5v",
        "glm-5",
        "glm-5v-turbo",
        "glm-4.7-flash",
        "glm-4.6",
    ] {
        assert_eq!(c.model(new).temperature_max, 1.0, "{new}");
    }
    assert_eq!(
        c.model("glm-5.3-flash").reasoning_efforts.as_deref(),
        Some(&["low".to_owned(), "high".to_owned(), "max".to_owned()][..])
    );
    assert_eq!(c.model("glm-5.1").reasoning_efforts, None);
    assert_eq!(c.model("GLM-4.7").max_output, 131_072);
    assert!(!c.model("my-model").known);
}

#[test]
fn embedding_and_image_models_carry_their_shapes() {
    let c = Catalogue::builtin();
    assert_eq!(
        c.model("embedding-3").dimensions.as_deref(),
        Some(&[256, 512, 1024, 2048][..])
    );
    assert_eq!(c.model("embedding-2").dimensions, None);
    assert_eq!(c.model("embedding-2").max_batch, Some(64));
    for image in [
        "cogview-4",
        "cogview-4-250304",
        "cogview-3-flash",
        "cogview-3",
        "cogview-3-plus",
    ] {
        let info = c.model(image);
        assert_eq!(info.kind, Kind::Image, "{image}");
        assert!(info.sizes.contains(&(1024, 1024)), "{image}");
    }
    assert!(c.model("cogview-4").custom_size.unwrap().fits(1792, 1024));
    assert!(!c.model("cogview-4").custom_size.unwrap().fits(1800, 1000));
    assert_eq!(c.model("cogview-3").custom_size, None);
    assert!(c.model("glm-image").sizes.contains(&(1280, 1280)));
    assert!(c.model("glm-image").custom_size.unwrap().fits(2048, 2048));
    assert_eq!(c.model("glm-image").qualities, ["hd"]);
}

#[test]
fn price_sources_are_named() {
    let c = Catalogue::builtin();
    for entry in c.prices() {
        assert!(c.source(&entry.source).is_some(), "{}", entry.model());
    }
}

#[test]
fn a_broken_catalogue_says_what_is_wrong() {
    let twice = "[sources]\n[defaults]\n[openai]\naliases = {}\ncommon = []\n\
                 [[models]]\nname = \"a\"\n[[models]]\nname = \"a\"\n";
    assert!(Catalogue::parse(twice).unwrap_err().contains("twice"));
    let source = "[sources]\n[defaults]\n[openai]\naliases = {}\ncommon = []\n\
                  [[models]]\nname = \"a\"\n[[models.prices]]\nsince = \"2026-01-01\"\nsource = \"x\"\n";
    assert!(Catalogue::parse(source)
        .unwrap_err()
        .contains("unknown source"));
    assert!(Catalogue::parse("[[models]]\nbogus = 1").is_err());
}
