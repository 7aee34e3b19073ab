//! `OpenAiJson<T>`: a JSON body extractor whose every rejection is an OpenAI-shaped error:
//! 413 past the size limit, 408 past the body timeout, 400 for bad JSON or a wrong type, naming the field in `param`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

pub use crate::openai::body::parse;

use crate::error::{ApiError, ErrorCode};

/// Unlike `axum::Json` it does not insist on a `Content-Type` header: curl users forget it, and
/// the body is JSON or an error either way.
pub struct OpenAiJson<T>(pub T);

impl<S, T> FromRequest<S> for OpenAiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_error)?;
        parse(&bytes).map(Self)
    }
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if timed_out(&rejection) {
        ApiError::new(
            ErrorCode::RequestTimeout,
            "The request body did not arrive in time.",
        )
    } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::RequestTooLarge, "The request body is too large.")
    } else {
        ApiError::invalid_request(format!("The request body could not be read: {rejection}"))
    }
}

/// Whether reading the body stopped at `server.body_timeout`.
fn timed_out(rejection: &BytesRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = cause {
        if error.is::<crate::server::admission::BodyTimeout>() {
            return true;
        }
        cause = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[expect(dead_code, reason = "only deserialized")]
        model: String,
        #[expect(dead_code, reason = "only deserialized")]
        nested: Option<Vec<u32>>,
    }

    #[test]
    fn errors_name_the_field_and_status() {
        let missing = parse::<Body>(br#"{"nested":[1]}"#).unwrap_err();
        assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
        assert_eq!(missing.param.as_deref(), Some("model"));
        let wrong = parse::<Body>(br#"{"model":"m","nested":[1,"x"]}"#).unwrap_err();
        assert_eq!(wrong.param.as_deref(), Some("nested[1]"));
        let syntax = parse::<Body>(b"{\"model\":").unwrap_err();
        assert_eq!(Some(syntax.code.as_str()), Some("invalid_json"));
        let trailing = parse::<Body>(br#"{"model":"m"} x"#).unwrap_err();
        assert_eq!(Some(trailing.code.as_str()), Some("invalid_json"));
    }

    /// The deadline is for the whole body: a byte every 50 ms does not keep it alive.
    #[tokio::test]
    async fn a_trickled_body_gets_408() {
        let mut config = crate::config::Config::from_toml("", &|_| None)
            .unwrap()
            .server;
        config.body_timeout = std::time::Duration::from_millis(200);
        let app =
            axum::Router::new()
                .route(
                    "/",
                    axum::routing::post(
                        |OpenAiJson(body): OpenAiJson<serde_json::Value>| async move {
                            body.to_string()
                        },
                    ),
                )
                .layer(axum::middleware::from_fn_with_state(
                    crate::server::admission::Admission::new(&config),
                    crate::server::admission::admit,
                ));
        let trickle = futures_util::stream::unfold(0, |n| async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            (n < 40).then(|| (Ok::<_, std::io::Error>(Bytes::from_static(b" ")), n + 1))
        });
        let request = Request::post("/")
            .body(axum::body::Body::from_stream(trickle))
            .unwrap();
        let response = tower::ServiceExt::oneshot(app, request).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    }
}
