//! JSON Schema for the emulated model: finding a schema in system text, generating an instance
//! that validates against it (tool-call arguments, `json_object` answers) and spoiling one.

use serde_json::{json, Map, Value};

/// Deeper schemas (usually recursive `$ref`s) end in `null` rather than looping.
const MAX_DEPTH: usize = 8;
/// A `{` that starts no schema is skipped; this bounds the work on long system prompts.
const MAX_CANDIDATES: usize = 256;

/// The first `{`…`}` span of `text` that parses as a JSON object and looks like a schema (it
/// has `"type": "object"` or `"properties"`).
pub(crate) fn find_in_text(text: &str) -> Option<Value> {
    text.match_indices('{')
        .take(MAX_CANDIDATES)
        .find_map(|(start, _)| {
            let end = matching_brace(&text[start..])?;
            let value: Value = serde_json::from_str(&text[start..start + end]).ok()?;
            let object = value.as_object()?;
            let is_schema =
                object.get("type") == Some(&json!("object")) || object.contains_key("properties");
            is_schema.then_some(value)
        })
}

/// The byte length of the balanced `{…}` that `text` starts with, ignoring braces in strings.
fn matching_brace(text: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// A value that validates against `schema`: every listed property, arrays of one item, the
/// first `enum` value, the first `anyOf`/`oneOf` branch, `$ref`s into `$defs` resolved.
pub(crate) fn instance(schema: &Value) -> Value {
    generate(schema, schema, 0)
}

/// A value `schema` rejects: required properties dropped, or else the first property given a
/// value of the wrong type, or else a property `additionalProperties: false` forbids.
pub(crate) fn violating_instance(schema: &Value) -> Value {
    let resolved = resolve(schema, schema, 0);
    let mut value = instance(schema);
    let Some(object) = value.as_object_mut() else {
        return json!({"unexpected": "the schema wanted no object"});
    };
    let required: Vec<&str> = resolved
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !required.is_empty() {
        object.retain(|key, _| !required.contains(&key.as_str()));
        return value;
    }
    if let Some((_, first)) = object.iter_mut().next() {
        *first = if first.is_string() {
            json!(12345)
        } else {
            json!("wrong type")
        };
        return value;
    }
    // `{"unexpected": …}` breaks `additionalProperties: false`; with no properties and no
    // rules nothing can, so that best effort is all there is.
    object.insert("unexpected".to_owned(), json!(true));
    value
}

/// Follows `$ref`s (`#/$defs/X`, `#/definitions/X`, `#`) until a schema without one.
fn resolve<'a>(schema: &'a Value, root: &'a Value, depth: usize) -> &'a Value {
    let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
        return schema;
    };
    if depth >= MAX_DEPTH {
        return &Value::Null;
    }
    let target = match reference.strip_prefix('#') {
        Some("") => Some(root),
        Some(pointer) => root.pointer(pointer),
        None => None,
    };
    target.map_or(&Value::Null, |t| resolve(t, root, depth + 1))
}

fn generate(schema: &Value, root: &Value, depth: usize) -> Value {
    if depth >= MAX_DEPTH {
        return Value::Null;
    }
    let schema = resolve(schema, root, depth);
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = schema
            .get(combinator)
            .and_then(Value::as_array)
            .and_then(|b| b.first())
        {
            return generate(first, root, depth + 1);
        }
    }
    match type_of(schema) {
        Some("object") => object(schema, root, depth),
        Some("array") => {
            let item = schema.get("items").map_or_else(
                || json!("emulated"),
                |items| generate(items, root, depth + 1),
            );
            let count = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1);
            Value::Array(vec![item; count.clamp(1, 16) as usize])
        }
        Some("string") => string(schema),
        Some("integer") => json!(number(schema).round() as i64),
        Some("number") => json!(number(schema)),
        Some("boolean") => json!(true),
        Some("null") => Value::Null,
        _ => json!("emulated"),
    }
}

/// The schema's type: `type` (the first non-null one of a list), or guessed from its keywords.
fn type_of(schema: &Value) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(kind)) => Some(kind),
        Some(Value::Array(kinds)) => {
            let kinds: Vec<&str> = kinds.iter().filter_map(Value::as_str).collect();
            kinds
                .iter()
                .find(|k| **k != "null")
                .or(kinds.first())
                .copied()
        }
        _ if schema.get("properties").is_some() => Some("object"),
        _ if schema.get("items").is_some() => Some("array"),
        _ => None,
    }
}

fn object(schema: &Value, root: &Value, depth: usize) -> Value {
    let mut out = Map::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, property) in properties {
            out.insert(key.clone(), generate(property, root, depth + 1));
        }
    }
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    let required = schema.get("required").and_then(Value::as_array);
    for key in required.into_iter().flatten().filter_map(Value::as_str) {
        if !closed && !out.contains_key(key) {
            out.insert(key.to_owned(), json!("emulated"));
        }
    }
    Value::Object(out)
}

fn string(schema: &Value) -> Value {
    let text = match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => "2025-01-01T00:00:00Z",
        Some("date") => "2025-01-01",
        Some("time") => "00:00:00",
        Some("email") => "user@example.com",
        Some("uri" | "url") => "https://example.com/",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        _ => "emulated",
    };
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0);
    let mut text = text.to_owned();
    while (text.chars().count() as u64) < min.min(1024) {
        text.push('x');
    }
    json!(text)
}

/// 1, moved inside `minimum`/`maximum` when they exclude it.
fn number(schema: &Value) -> f64 {
    let mut n: f64 = 1.0;
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        n = n.max(min);
    }
    if let Some(min) = schema.get("exclusiveMinimum").and_then(Value::as_f64) {
        if n <= min {
            n = min.floor() + 1.0;
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        n = n.min(max);
    }
    if let Some(max) = schema.get("exclusiveMaximum").and_then(Value::as_f64) {
        if n >= max {
            n = max.ceil() - 1.0;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_found_after_other_braces() {
        let text = r#"Use {curly} words. Schema: {"type": "object", "properties": {"a": {"type": "string", "description": "a } brace"}}} Thanks."#;
        let schema = find_in_text(text).expect("schema");
        assert_eq!(schema["properties"]["a"]["description"], "a } brace");
        assert!(find_in_text(r#"Say {"x": 1} as JSON"#).is_none());
        assert!(find_in_text("{ unbalanced").is_none());
    }

    #[test]
    fn instances_follow_the_schema() {
        let schema = json!({"type": "object", "properties": {
            "when": {"type": "string", "format": "date"},
            "kinds": {"type": "array", "items": {"$ref": "#/definitions/K"}, "minItems": 2},
            "maybe": {"type": ["null", "number"], "exclusiveMaximum": 0},
            "node": {"$ref": "#"}},
            "required": ["extra"],
            "definitions": {"K": {"const": "k"}}});
        let value = instance(&schema);
        assert_eq!(value["when"], "2025-01-01");
        assert_eq!(value["kinds"], json!(["k", "k"]));
        assert_eq!(value["maybe"], json!(-1.0));
        assert_eq!(value["extra"], "emulated");
        assert!(
            value["node"]["node"].is_object(),
            "recursion stops at a depth, not at once"
        );
    }

    #[test]
    fn violations_break_the_schema() {
        let no_required = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
        assert_eq!(violating_instance(&no_required), json!({"n": "wrong type"}));
        let closed = json!({"type": "object", "additionalProperties": false});
        assert_eq!(violating_instance(&closed), json!({"unexpected": true}));
        let required = json!({"type": "object", "required": ["a"],
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}}});
        assert_eq!(violating_instance(&required), json!({"b": "emulated"}));
    }
}
