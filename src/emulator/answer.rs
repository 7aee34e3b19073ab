//! What the emulated model says: the reply (text pieces or one tool call) chosen from the
//! request and its directives, and the deterministic token usage that goes with it. It acts
//! like a model on the common paths: it calls a tool the user names, and in `json_object` mode
//! it answers JSON matching the schema given in the system prompt.

use rand::RngCore;
use serde_json::{json, Map, Value};

use super::directives::{message_text, BadJson, Directives};
use super::messages::role_of;
use super::schema;

/// `#echo` streams the request body in pieces of this many characters.
const ECHO_PIECE_CHARS: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    Text {
        pieces: Vec<String>,
        finish: String,
    },
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub reply: Reply,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The part of `prompt_tokens` served from the context cache.
    pub cached_tokens: u64,
}

impl Answer {
    pub(crate) fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
        })
    }

    pub(crate) fn finish_reason(&self) -> &str {
        match &self.reply {
            Reply::Text { finish, .. } => finish,
            Reply::ToolCall { .. } => "tool_calls",
        }
    }
}

/// Chooses the reply: a tool call (`#tool`, or a tool the user names), then `#echo`, JSON in
/// `json_object` mode, `#chunks`, a tool result, the greeting.
pub(crate) fn plan(body: &Value, messages: &[Value], tools: &[Value], d: &Directives) -> Answer {
    let prompt_tokens = prompt_tokens(messages);
    let cached_tokens = d.cached.unwrap_or(0).min(prompt_tokens);
    let last = messages.last();
    let functions: Vec<&Value> = tools
        .iter()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
        .collect();
    let tool = match last.filter(|m| role_of(m) == Some("user")) {
        Some(_) if d.tool => functions.first().copied(),
        Some(user) => named_tool(&functions, &message_text(user)),
        None => None,
    };
    if let Some(tool) = tool {
        return Answer {
            reply: tool_call(tool),
            prompt_tokens,
            completion_tokens: 1,
            cached_tokens,
        };
    }
    let json_mode = body
        .pointer("/response_format/type")
        .and_then(Value::as_str);
    let pieces = if d.echo {
        char_pieces(&body.to_string(), ECHO_PIECE_CHARS)
    } else if json_mode == Some("json_object") {
        char_pieces(&json_answer(messages, d).to_string(), ECHO_PIECE_CHARS)
    } else if let Some(n) = d.chunks {
        word_pieces(
            &(1..=n)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" "),
        )
    } else if let Some(tool_msg) = last.filter(|m| role_of(m) == Some("tool")) {
        word_pieces(&format!("The tool said: {}", message_text(tool_msg)))
    } else {
        word_pieces(&format!(
            "Hello from the GLM emulator. You said: {}",
            d.text
        ))
    };
    let completion_tokens = pieces.len().max(1) as u64;
    let finish = d.finish.clone().unwrap_or_else(|| "stop".to_owned());
    Answer {
        reply: Reply::Text { pieces, finish },
        prompt_tokens,
        completion_tokens,
        cached_tokens,
    }
}

/// Sum over messages of ceil(chars / 4) + 4: crude, but stable across runs.
fn prompt_tokens(messages: &[Value]) -> u64 {
    messages
        .iter()
        .map(|m| (message_text(m).chars().count() as u64).div_ceil(4) + 4)
        .sum()
}

/// Splits into words, each keeping its following space, so the pieces concatenate back.
fn word_pieces(text: &str) -> Vec<String> {
    let mut pieces: Vec<String> = text.split(' ').map(|w| format!("{w} ")).collect();
    if let Some(last) = pieces.last_mut() {
        last.pop();
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

fn char_pieces(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// The first tool whose function name appears in `text` as a whole word, ignoring case. Names
/// are `[A-Za-z0-9_-]+`, so words are the runs of those characters.
fn named_tool<'a>(functions: &[&'a Value], text: &str) -> Option<&'a Value> {
    let words: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    functions.iter().copied().find(|tool| {
        tool.pointer("/function/name")
            .and_then(Value::as_str)
            .is_some_and(|name| words.contains(&name.to_ascii_lowercase()))
    })
}

/// The `json_object` answer: an instance of the schema found in a system message, or the
/// user's words wrapped in an object. `#bad-json` spoils it until the last user message talks
/// about validation (as a gateway's repair request does); `#always-bad-json` always does.
fn json_answer(messages: &[Value], d: &Directives) -> Value {
    let schema = messages
        .iter()
        .filter(|m| role_of(m) == Some("system"))
        .find_map(|m| schema::find_in_text(&message_text(m)));
    let last_user = messages.iter().rev().find(|m| role_of(m) == Some("user"));
    let asks_repair = last_user.is_some_and(|m| {
        let text = message_text(m).to_lowercase();
        text.contains("did not match the schema") || text.contains("validation")
    });
    let bad = match d.bad_json {
        Some(BadJson::Always) => true,
        Some(BadJson::UntilRepaired) => !asks_repair,
        None => false,
    };
    match (schema, bad) {
        (Some(schema), false) => schema::instance(&schema),
        (Some(schema), true) => schema::violating_instance(&schema),
        (None, false) => json!({"answer": d.text}),
        (None, true) => json!({"unexpected": d.text}),
    }
}

fn tool_call(tool: &Value) -> Reply {
    let function = &tool["function"];
    let name = function["name"].as_str().unwrap_or_default().to_owned();
    let arguments = match schema::instance(&function["parameters"]) {
        Value::Object(arguments) => arguments,
        _ => Map::new(),
    };
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    Reply::ToolCall {
        id: format!("call_{}", hex::encode(bytes)),
        name,
        arguments: Value::Object(arguments).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_reassemble() {
        assert_eq!(word_pieces("a b c"), vec!["a ", "b ", "c"]);
        assert_eq!(char_pieces("abcdef", 4), vec!["abcd", "ef"]);
    }

    #[test]
    fn tokens_are_deterministic() {
        let messages = vec![json!({"role": "user", "content": "hello"})];
        assert_eq!(prompt_tokens(&messages), 2 + 4);
        let d = Directives::parse("hi #chunks 3");
        let answer = plan(&json!({}), &messages, &[], &d);
        assert_eq!(answer.completion_tokens, 3);
        assert_eq!(answer.usage()["total_tokens"], 9);
    }
}
