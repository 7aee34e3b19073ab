//! Authentication: raw keys, Zhipu JWTs, and the 1001/1002/1003 rejections.

use super::{ask, error_code, jwt, now_ms, Emulator, KEY};

#[tokio::test]
async fn raw_bearer_key_and_valid_jwt_pass() {
    let emu = Emulator::start().await;
    assert_eq!(emu.chat(&ask("hi")).await.status(), 200);
    let now = now_ms();
    let token = jwt("testid", "testsecret", now + 180_000, now);
    let bearer = emu
        .chat_with_auth(&ask("hi"), Some(&format!("Bearer {token}")))
        .await;
    assert_eq!(bearer.status(), 200);
    let bare = emu.chat_with_auth(&ask("hi"), Some(&token)).await;
    assert_eq!(bare.status(), 200);
}

#[tokio::test]
async fn missing_header_is_1001() {
    let emu = Emulator::start().await;
    let response = emu.chat_with_auth(&ask("hi"), None).await;
    assert_eq!(error_code(response).await, (401, "1001".to_owned()));
}

#[tokio::test]
async fn bad_tokens_are_1002() {
    let emu = Emulator::start().await;
    let now = now_ms();
    let cases = [
        jwt("testid", "wrongsecret", now + 180_000, now),
        jwt("otherid", "testsecret", now + 180_000, now),
        jwt("testid", "testsecret", now / 1000 + 180, now / 1000),
        jwt("testid", "testsecret", now + 900_000, now + 600_000),
        "not-a-token".to_owned(),
        KEY.to_owned(),
    ];
    for token in cases {
        let response = emu.chat_with_auth(&ask("hi"), Some(&token)).await;
        assert_eq!(
            error_code(response).await,
            (401, "1002".to_owned()),
            "{token}"
        );
    }
}

#[tokio::test]
async fn expired_token_is_1003() {
    let emu = Emulator::start().await;
    let now = now_ms();
    let token = jwt("testid", "testsecret", now - 1000, now - 181_000);
    let response = emu
        .chat_with_auth(&ask("hi"), Some(&format!("Bearer {token}")))
        .await;
    assert_eq!(error_code(response).await, (401, "1003".to_owned()));
}

#[tokio::test]
async fn requests_are_recorded_with_their_auth() {
    let emu = Emulator::start().await;
    emu.chat_with_auth(&ask("one"), None).await;
    emu.chat(&ask("two")).await;
    let seen = emu.handle.requests();
    assert_eq!(emu.handle.request_count(), 2);
    assert_eq!(seen[0].authorization, None);
    assert_eq!(
        seen[1].authorization.as_deref(),
        Some("Bearer testid.testsecret")
    );
    assert_eq!(seen[1].path, "/api/paas/v4/chat/completions");
    assert_eq!(seen[1].body["messages"][0]["content"], "two");
}
