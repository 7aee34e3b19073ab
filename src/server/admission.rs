//! Admission: at most `max_in_flight` requests handled at once, and request bodies together
//! within `max_buffered_body_bytes`. What does not fit gets an OpenAI-shaped 503 with
//! `retry-after: 1` at once, rather than waiting and holding memory. An admitted body must
//! arrive whole within `body_timeout` (`OpenAiJson` answers 408 on `BodyTimeout`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use crate::config::ServerConfig;
use crate::error::{ApiError, ErrorCode};

/// The shared counters; clones share them.
#[derive(Debug, Clone)]
pub struct Admission {
    in_flight: Arc<Semaphore>,
    /// One permit per byte of request body that may be buffered.
    body_bytes: Arc<Semaphore>,
    max_body_bytes: usize,
    body_timeout: Duration,
}

impl Admission {
    pub fn new(config: &ServerConfig) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            body_bytes: Arc::new(Semaphore::new(config.max_buffered_body_bytes)),
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.body_timeout,
        }
    }

    /// The bytes a request's body may come to: its declared length (capped at the body limit,
    /// past which it is refused unread), or the body limit when the length is not known.
    fn reservation(&self, request: &Request) -> u32 {
        let declared = request.body().size_hint().exact().or_else(|| {
            request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        });
        let bytes = declared.map_or(self.max_body_bytes, |n| {
            usize::try_from(n).map_or(self.max_body_bytes, |n| n.min(self.max_body_bytes))
        });
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// The middleware: holds an in-flight slot and the body's bytes until the handler has
/// answered (a stream's relay then goes on without them: it holds no request body).
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let Ok(_slot) = Arc::clone(&admission.in_flight).try_acquire_owned() else {
        return overloaded(
            ErrorCode::TooManyRequestsInFlight,
            "The gateway is handling as many requests as it may; please retry shortly.",
        );
    };
    let bytes = admission.reservation(&request);
    let _reserved =
        if bytes == 0 {
            None
        } else {
            match Arc::clone(&admission.body_bytes).try_acquire_many_owned(bytes) {
                Ok(permit) => Some(permit),
                Err(_) => return overloaded(
                    ErrorCode::RequestBodyBudgetExhausted,
                    "The gateway is holding as many request bytes as it may; please retry shortly.",
                ),
            }
        };
    let deadline = Instant::now() + admission.body_timeout;
    next.run(request.map(|body| Body::new(Deadline::new(body, deadline))))
        .await
}

/// Reading the request body took longer than `server.body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// A body that fails with `BodyTimeout` once its deadline has passed: a total limit, so that a
/// client trickling a byte now and then cannot hold a request open either.
struct Deadline {
    body: Body,
    timer: Pin<Box<Sleep>>,
}

impl Deadline {
    fn new(body: Body, deadline: Instant) -> Self {
        Self {
            body,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

fn overloaded(code: ErrorCode, message: &'static str) -> Response {
    metrics::counter!("glm_gateway_requests_shed_total", "reason" => code.as_str()).increment(1);
    ApiError::new(code, message).retry_after(1).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    fn config(max_in_flight: usize, budget: usize) -> ServerConfig {
        let mut config = crate::config::Config::from_toml("", &|_| None)
            .unwrap()
            .server;
        config.max_in_flight = max_in_flight;
        config.max_buffered_body_bytes = budget;
        config.max_body_bytes = 100;
        config
    }

    fn app(admission: Admission) -> Router {
        Router::new()
            .route("/", post(|body: String| async move { body }))
            .layer(axum::middleware::from_fn_with_state(admission, admit))
    }

    #[tokio::test]
    async fn a_body_larger_than_the_budget_left_is_refused() {
        let admission = Admission::new(&config(4, 150));
        let held = Arc::clone(&admission.body_bytes)
            .try_acquire_many_owned(100)
            .unwrap();
        let request = |len: usize| {
            Request::post("/")
                .header(header::CONTENT_LENGTH, len)
                .body(Body::from(vec![b'a'; len]))
                .unwrap()
        };
        let small = app(admission.clone()).oneshot(request(40)).await.unwrap();
        assert_eq!(small.status(), StatusCode::OK);
        let large = app(admission.clone()).oneshot(request(60)).await.unwrap();
        assert_eq!(large.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(large.headers()["retry-after"], "1");
        drop(held);
        let large = app(admission).oneshot(request(60)).await.unwrap();
        assert_eq!(large.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn past_the_in_flight_limit_answers_503() {
        let admission = Admission::new(&config(1, 1000));
        let slot = Arc::clone(&admission.in_flight)
            .try_acquire_owned()
            .unwrap();
        let request = Request::post("/").body(Body::empty()).unwrap();
        let response = app(admission.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(slot);
        let request = Request::post("/").body(Body::empty()).unwrap();
        let response = app(admission).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
