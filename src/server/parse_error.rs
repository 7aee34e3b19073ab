//! hyper answers a request it cannot parse (a bad method, URI, header or version: 400; a URI
//! too long: 414; a header too large: 431) by itself, with an empty body, before any layer of
//! ours runs, and offers no hook for the body. Such an answer is the only thing hyper writes on
//! a connection that is still waiting for a request's header, so `Watched` recognises it there
//! and writes an OpenAI-shaped reply in its place. These requests reach no layer: they get a
//! fresh `x-request-id` but count in no metric and, having no key, leave no ledger row.

use axum::http::StatusCode;

use crate::error::{ApiError, ErrorCode};
use crate::request_id::RequestId;

/// The reply to send instead of `head`, when `head` is hyper's automatic error answer.
pub(super) fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let rest = head.strip_prefix(b"HTTP/1.1 ")?;
    let status = StatusCode::from_bytes(rest.get(..3)?).ok()?;
    let error = match status {
        StatusCode::BAD_REQUEST => ApiError::new(
            ErrorCode::InvalidHttpRequest,
            "The request is not valid HTTP: a bad method, URI, header name or header value \
             (control characters are not allowed).",
        ),
        StatusCode::URI_TOO_LONG => {
            ApiError::new(ErrorCode::UriTooLong, "The request URI is too long.")
        }
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ApiError::new(
            ErrorCode::RequestHeaderTooLarge,
            "The request's header is too large.",
        ),
        _ => return None,
    };
    let body = error.body().to_string();
    let reply = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         x-request-id: {}\r\nconnection: close\r\n\r\n{body}",
        body.len(),
        RequestId::generate().as_str(),
    );
    Some(reply.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_become_json_replies() {
        let reply = replacement(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n").unwrap();
        let reply = String::from_utf8(reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let (_, body) = reply.split_once("\r\n\r\n").unwrap();
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "request_header_too_large");
        assert!(replacement(b"HTTP/1.1 200 OK\r\n\r\n").is_none());
        assert!(replacement(b"\0\0\x12\x04").is_none());
    }
}
