//! What the emulated model says: the reply (text pieces or one tool call) chosen from the
//! request and its directives, and the deterministic token usage that goes with it.

use rand::RngCore;
use serde_json::{json, Map, Value};

use super::directives::{message_text, Directives};
use super::messages::role_of;

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
}

impl Answer {
    pub(crate) fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
        })
    }

    pub(crate) fn finish_reason(&self) -> &str {
        match &self.reply {
            Reply::Text { finish, .. } => finish,
            Reply::ToolCall { .. } => "tool_calls",
        }
    }
}

/// Chooses the reply: a tool call, then `#echo`, `#chunks`, a tool result, the greeting.
pub(crate) fn plan(body: &Value, messages: &[Value], tools: &[Value], d: &Directives) -> Answer {
    let prompt_tokens = prompt_tokens(messages);
    let last = messages.last();
    let last_is_user = last.and_then(role_of) == Some("user");
    let function = tools
        .iter()
        .find(|t| t.get("type").and_then(Value::as_str) == Some("function"));
    if let (true, true, Some(tool)) = (d.tool, last_is_user, function) {
        return Answer {
            reply: tool_call(tool),
            prompt_tokens,
            completion_tokens: 1,
        };
    }
    let pieces = if d.echo {
        char_pieces(&body.to_string(), ECHO_PIECE_CHARS)
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

fn tool_call(tool: &Value) -> Reply {
    let function = &tool["function"];
    let name = function["name"].as_str().unwrap_or_default().to_owned();
    let mut arguments = Map::new();
    if let Some(properties) = function["parameters"]
        .get("properties")
        .and_then(Value::as_object)
    {
        for (key, schema) in properties {
            arguments.insert(key.clone(), sample_value(schema));
        }
    }
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    Reply::ToolCall {
        id: format!("call_{}", hex::encode(bytes)),
        name,
        arguments: Value::Object(arguments).to_string(),
    }
}

fn sample_value(schema: &Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => json!("emulated"),
        Some("number" | "integer") => json!(1),
        Some("boolean") => json!(true),
        _ => Value::Null,
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
