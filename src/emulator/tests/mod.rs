//! End-to-end tests of the emulator over real HTTP on 127.0.0.1, plus the helpers they share.

mod auth;
mod chat;
mod embeddings;
mod images;
mod json_mode;
mod responses;
mod validation;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

use super::{spawn, EmulatorConfig, EmulatorHandle};

pub(super) const KEY: &str = "testid.testsecret";

pub(super) struct Emulator {
    pub base: String,
    pub handle: EmulatorHandle,
    pub client: reqwest::Client,
}

impl Emulator {
    pub(super) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = EmulatorConfig {
            api_keys: vec![KEY.to_owned()],
            chunk_delay: Duration::ZERO,
        };
        let handle = spawn(listener, config);
        Self {
            base: format!("http://{addr}/api/paas/v4"),
            handle,
            client: reqwest::Client::new(),
        }
    }

    /// POSTs `body` to `/chat/completions` with the raw key as a bearer token.
    pub(super) async fn chat(&self, body: &Value) -> reqwest::Response {
        self.chat_with_auth(body, Some(&format!("Bearer {KEY}")))
            .await
    }

    /// POSTs `body` to `path` (under `/api/paas/v4`) with the raw key as a bearer token.
    pub(super) async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {KEY}"))
            .json(body)
            .send()
            .await
            .expect("send")
    }

    pub(super) async fn chat_with_auth(
        &self,
        body: &Value,
        auth: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/chat/completions", self.base))
            .json(body);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        request.send().await.expect("send")
    }
}

/// A one-message request for `glm-4.5` saying `text`.
pub(super) fn ask(text: &str) -> Value {
    json!({"model": "glm-4.5", "messages": [{"role": "user", "content": text}]})
}

/// Status and the error code of a Zhipu error reply.
pub(super) async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json error body");
    let code = body["error"]["code"]
        .as_str()
        .expect("string code")
        .to_owned();
    (status, code)
}

/// The `data:` payloads of an SSE body, in order.
pub(super) fn sse_events(text: &str) -> Vec<String> {
    assert!(text.ends_with("\n\n"), "events end with a blank line");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect("data: prefix").to_owned())
        .collect()
}

/// Signs a Zhipu-style JWT: header with `sign_type`, claims with times in milliseconds.
pub(super) fn jwt(id: &str, secret: &str, exp: i64, timestamp: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","sign_type":"SIGN"}"#);
    let claims = json!({"api_key": id, "exp": exp, "timestamp": timestamp});
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let message = format!("{header}.{payload}");
    let key = EncodingKey::from_secret(secret.as_bytes());
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("sign");
    format!("{message}.{signature}")
}

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
