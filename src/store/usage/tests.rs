use super::*;

#[test]
fn groups_parse_and_name_their_field() {
    assert_eq!("team".parse(), Ok(UsageGroup::Team));
    assert_eq!("key".parse(), Ok(UsageGroup::Key));
    assert_eq!("model".parse(), Ok(UsageGroup::Model));
    assert!("teams".parse::<UsageGroup>().is_err());
    assert_eq!(UsageGroup::Key.field(), "api_key_id");
}

#[test]
fn a_summary_serializes_its_group_under_the_group_field() {
    let summary = UsageSummary {
        group: UsageGroup::Model,
        name: "glm-4-plus".into(),
        requests: 2,
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 15,
        cost: None,
    };
    let json = serde_json::to_value(&summary).unwrap_or_default();
    assert_eq!(
        json,
        serde_json::json!({"model": "glm-4-plus", "requests": 2, "prompt_tokens": 10,
            "completion_tokens": 5, "total_tokens": 15, "cost": null})
    );
}

#[test]
fn partition_names_round_trip() {
    let day = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap_or_default();
    assert_eq!(partition_name(day), "usage_events_p20260309");
    assert_eq!(partition_day("usage_events_p20260309"), Some(day));
    assert_eq!(partition_day("usage_events_default"), None);
    assert_eq!(partition_day("usage_events_p2026030"), None);
}
