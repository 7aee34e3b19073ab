use std::collections::HashMap;

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn defaults_apply_without_file_or_environment() {
    let config = Config::from_toml("", &env_of(&[])).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.database_url, "sqlite://glm-gateway.db");
    assert_eq!(config.zhipu.base_url, DEFAULT_BASE_URL);
    assert_eq!(config.zhipu.auth, AuthMode::Jwt);
    assert!(config.admin_token.is_none());
    assert!(config.zhipu.api_keys.is_empty());
}

#[test]
fn environment_wins_over_file() {
    let toml = "listen = \"127.0.0.1:1\"\n[zhipu]\napi_keys = [\"a.b\"]\n";
    let env = env_of(&[
        ("GLM_GATEWAY_LISTEN", "0.0.0.0:9000"),
        ("ZHIPUAI_API_KEY", "x.y, z.w"),
        ("ZHIPUAI_AUTH", "bearer"),
    ]);
    let config = Config::from_toml(toml, &env).unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
    let keys: Vec<&str> = config.zhipu.api_keys.iter().map(Secret::expose).collect();
    assert_eq!(keys, ["x.y", "z.w"]);
    assert_eq!(config.zhipu.auth, AuthMode::Bearer);
}

#[test]
fn zhipu_api_key_is_read_as_a_fallback_name() {
    let config = Config::from_toml("", &env_of(&[("ZHIPU_API_KEY", "id.secret")])).unwrap();
    assert_eq!(config.zhipu.api_keys.len(), 1);
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let err = Config::from_toml("lisen = \"x\"", &env_of(&[])).unwrap_err();
    assert!(err.setting.starts_with("lisen"), "{err}");
    let err = Config::from_toml("[zhipu]\nbase = \"x\"", &env_of(&[])).unwrap_err();
    assert!(err.to_string().contains("base"), "{err}");
}

#[test]
fn bad_values_name_the_setting() {
    let cases = [
        (env_of(&[("GLM_GATEWAY_LISTEN", "nowhere")]), "listen"),
        (env_of(&[("DATABASE_URL", "mysql://x")]), "database_url"),
        (env_of(&[("ZHIPUAI_API_KEY", "no-dot")]), "zhipu.api_keys"),
        (env_of(&[("ZHIPUAI_AUTH", "basic")]), "zhipu.auth"),
        (env_of(&[("ZHIPUAI_BASE_URL", "ftp://x")]), "zhipu.base_url"),
        (
            env_of(&[("GLM_GATEWAY_ADMIN_TOKEN", "short")]),
            "admin_token",
        ),
    ];
    for (env, setting) in cases {
        let err = Config::from_toml("", &env).unwrap_err();
        assert!(
            err.setting.starts_with(setting),
            "{err} should name {setting}"
        );
    }
    let err = Config::from_toml("[zhipu]\ntotal_timeout_secs = 0", &env_of(&[])).unwrap_err();
    assert_eq!(err.setting, "zhipu.total_timeout_secs");
}

#[test]
fn model_map_prefers_exact_then_longest_prefix_then_passthrough() {
    let toml = r#"
[models]
"gpt-4" = "glm-4"
"gpt-4*" = "glm-4-plus"
"gpt-4o*" = "glm-4.6v"
"#;
    let config = Config::from_toml(toml, &env_of(&[])).unwrap();
    let models = &config.models;
    assert_eq!(models.resolve("gpt-4"), "glm-4");
    assert_eq!(models.resolve("gpt-4-turbo"), "glm-4-plus");
    assert_eq!(models.resolve("gpt-4o-mini"), "glm-4.6v");
    assert_eq!(models.resolve("glm-4.7"), "glm-4.7");
}

#[test]
fn model_map_rejects_misplaced_wildcards() {
    assert!(Config::from_toml("[models]\n\"a*b\" = \"glm-4\"", &env_of(&[])).is_err());
    assert!(Config::from_toml("[models]\n\"a*\" = \"glm-*\"", &env_of(&[])).is_err());
}

#[test]
fn shipped_config_parses_and_equals_or_extends_the_builtin_map() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/gateway.toml"))
        .unwrap();
    let config = Config::from_toml(&text, &env_of(&[])).unwrap();
    let builtin = ModelMap::default();
    let catalogue = crate::catalogue::Catalogue::builtin();
    let common = catalogue.common_openai_models().iter().map(String::as_str);
    for name in common.chain(["gpt-4o-2024-08-06", "o3-pro", "gpt-5-codex"]) {
        assert_eq!(config.models.resolve(name), builtin.resolve(name), "{name}");
    }
    for (name, _) in catalogue.aliases() {
        let name = name.trim_end_matches('*');
        assert_eq!(config.models.resolve(name), builtin.resolve(name), "{name}");
    }
    assert_eq!(
        config.models.resolve("text-embedding-ada-002"),
        "embedding-3"
    );
}

#[test]
fn without_a_models_table_the_builtin_map_applies() {
    let config = Config::from_toml("", &env_of(&[])).unwrap();
    assert_eq!(config.models.resolve("gpt-4o"), "glm-4.6v");
    assert_eq!(config.models.resolve("dall-e-3"), "cogview-4-250304");
    let config =
        Config::from_toml("[models]\n\"gpt-4o*\" = \"glm-5v-turbo\"", &env_of(&[])).unwrap();
    assert_eq!(config.models.resolve("gpt-4o-mini"), "glm-5v-turbo");
    assert_eq!(config.models.resolve("gpt-4.1-nano"), "glm-4.7-flash");
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let config = Config::from_toml(
        "",
        &env_of(&[
            ("ZHIPUAI_API_KEY", "id.topsecret"),
            ("GLM_GATEWAY_ADMIN_TOKEN", "adminsecret"),
        ]),
    )
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("topsecret") && !debug.contains("adminsecret"));
}

#[test]
fn emulation_is_on_by_default_and_switchable_per_model() {
    let config = Config::from_toml("", &env_of(&[])).unwrap();
    assert_eq!(
        config.emulation.for_model("glm-4.7"),
        EmulationSwitches::default()
    );
    let toml = r#"
[emulation]
repair_attempts = 2
[emulation.models."glm-4.7-flash"]
json_schema = false
[emulation.models."glm-4.6v*"]
tool_choice = false
repair_attempts = 0
"#;
    let config = Config::from_toml(toml, &env_of(&[])).unwrap();
    let flash = config.emulation.for_model("glm-4.7-flash");
    assert!(!flash.json_schema && flash.tool_choice);
    assert_eq!(flash.repair_attempts, 2);
    let vision = config.emulation.for_model("glm-4.6v-flash");
    assert!(vision.json_schema && !vision.tool_choice);
    assert_eq!(vision.repair_attempts, 0);
    assert_eq!(
        config.emulation.for_model("glm-4.7-flashx").repair_attempts,
        2
    );
    let off = Config::from_toml("[emulation]\njson_schema = false", &env_of(&[])).unwrap();
    assert!(!off.emulation.for_model("glm-5.1").json_schema);
}

#[test]
fn emulation_rejects_unknown_keys_and_silly_values() {
    for toml in [
        "[emulation]\njson_schemas = true",
        "[emulation.models.\"glm-4.7\"]\nstrict = true",
        "[emulation]\nrepair_attempts = 50",
        "[emulation.models.\"a*b\"]\njson_schema = false",
    ] {
        let err = Config::from_toml(toml, &env_of(&[])).unwrap_err();
        assert!(
            err.to_string().contains("emulation")
                || err.setting.contains("json_schemas")
                || err.setting.contains("strict"),
            "{toml}: {err}"
        );
    }
}

#[test]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail fixes the closure's error type"
)]
fn every_section_setting_can_come_from_the_environment_over_the_file() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "gateway.toml",
            "[usage]\nbatch_size = 100\nstore_content = false\n",
        )?;
        jail.set_env("GLM_GATEWAY_USAGE__BATCH_SIZE", "7");
        jail.set_env("GLM_GATEWAY_USAGE__STORE_CONTENT", "true");
        jail.set_env("GLM_GATEWAY_EMULATION__REPAIR_ATTEMPTS", "0");
        jail.set_env("GLM_GATEWAY_SERVER__MAX_IN_FLIGHT", "9");
        let config = Config::load(Some(Path::new("gateway.toml"))).map_err(|e| e.to_string())?;
        assert_eq!(config.usage.batch_size, 7);
        assert!(config.usage.store_content);
        assert_eq!(config.emulation.for_model("glm-4.7").repair_attempts, 0);
        assert_eq!(config.server.max_in_flight, 9);
        Ok(())
    });
}

#[test]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail fixes the closure's error type"
)]
fn a_bad_setting_from_the_environment_names_its_variable() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("gateway.toml", "")?;
        jail.set_env("GLM_GATEWAY_USAGE__BATCH_SIZE", "many");
        let error = Config::load(Some(Path::new("gateway.toml"))).unwrap_err();
        assert!(error.setting.contains("usage.batch_size"), "{error}");
        assert!(error.setting.contains("GLM_GATEWAY_"), "{error}");
        jail.set_env("GLM_GATEWAY_USAGE__BATCH_SIZE", "5");
        jail.set_env("GLM_GATEWAY_NOSUCH__KEY", "1");
        let error = Config::load(Some(Path::new("gateway.toml"))).unwrap_err();
        assert!(error.to_string().contains("nosuch"), "{error}");
        Ok(())
    });
}
