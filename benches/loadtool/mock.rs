//! A GLM upstream that does no work per request: fixed bytes for `/chat/completions` (JSON, or
//! SSE when the body asks for a stream), `/embeddings` and nothing else. A body holding
//! `#hold` gets its first stream chunk at once and the rest only after `hold`, so streams can
//! be kept open. The shapes are those of Zhipu's answers as `src/emulator` sends them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use memchr::memmem;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

const CHAT: &str = "/api/paas/v4/chat/completions";
const EMBEDDINGS: &str = "/api/paas/v4/embeddings";

pub const PLAIN_ANSWER: &str = concat!(
    r#"{"id":"20250926190540c29952ed24ae4570","request_id":"20250926190540c29952ed24ae4570","#,
    r#""created":1758884740,"model":"glm-4.7","choices":[{"index":0,"finish_reason":"stop","#,
    r#""message":{"role":"assistant","content":"Hello! How can I help you today?"}}],"#,
    r#""usage":{"prompt_tokens":8,"completion_tokens":9,"total_tokens":17,"#,
    r#""prompt_tokens_details":{"cached_tokens":0}}}"#
);

const CHUNK_HEAD: &str =
    r#"data: {"id":"20250926190540c29952ed24ae4570","created":1758884740,"model":"glm-4.7","#;

/// The stream's first event, sent alone by a held stream.
fn first_chunk() -> String {
    format!(
        "{CHUNK_HEAD}\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"Hello\"}}}}]}}\n\n"
    )
}

/// Every event after the first: four more pieces of text, the finish with usage, `[DONE]`.
fn rest_of_stream() -> String {
    let mut rest = String::new();
    for piece in ["!", " How", " can I", " help?"] {
        rest.push_str(&format!(
            "{CHUNK_HEAD}\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"{piece}\"}}}}]}}\n\n"
        ));
    }
    rest.push_str(&format!(
        "{CHUNK_HEAD}\"choices\":[{{\"index\":0,\"finish_reason\":\"stop\",\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}}}}],\
         \"usage\":{{\"prompt_tokens\":8,\"completion_tokens\":5,\"total_tokens\":13,\"prompt_tokens_details\":{{\"cached_tokens\":0}}}}}}\n\n"
    ));
    rest.push_str("data: [DONE]\n\n");
    rest
}

/// embedding-3 at `dimensions: 256`.
fn embeddings_answer() -> String {
    let vector: Vec<String> = (0..256)
        .map(|i| format!("{:.6}", ((i * 37 % 101) as f64 - 50.0) / 400.0))
        .collect();
    format!(
        r#"{{"model":"embedding-3","object":"list","data":[{{"index":0,"object":"embedding","embedding":[{}]}}],"usage":{{"prompt_tokens":4,"completion_tokens":0,"total_tokens":4}}}}"#,
        vector.join(",")
    )
}

/// Every answer's bytes, made once.
struct Answers {
    plain: Bytes,
    stream: Bytes,
    first: Bytes,
    rest: Bytes,
    embeddings: Bytes,
    hold: Duration,
}

type Body = BoxBody<Bytes, Infallible>;

pub async fn run(listen: SocketAddr, hold: Duration) -> anyhow::Result<()> {
    let first = first_chunk();
    let rest = rest_of_stream();
    let answers: &'static Answers = Box::leak(Box::new(Answers {
        plain: Bytes::from_static(PLAIN_ANSWER.as_bytes()),
        stream: Bytes::from(format!("{first}{rest}")),
        first: Bytes::from(first),
        rest: Bytes::from(rest),
        embeddings: Bytes::from(embeddings_answer()),
        hold,
    }));
    let listener = TcpListener::bind(listen).await?;
    println!(
        "mock upstream listening on http://{}",
        listener.local_addr()?
    );
    let tasks = TaskTracker::new();
    loop {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        tasks.spawn(async move {
            let service = service_fn(move |request| answer(request, answers));
            // A client that goes away mid-request is no concern of the mock's.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    answers: &'static Answers,
) -> Result<Response<Body>, hyper::Error> {
    let path = request.uri().path().to_owned();
    let body = request.into_body().collect().await?.to_bytes();
    let response = match path.as_str() {
        CHAT if memmem::find(&body, b"\"stream\":true").is_none() => json(answers.plain.clone()),
        CHAT if memmem::find(&body, b"#hold").is_some() => held_stream(answers),
        CHAT => sse(Full::new(answers.stream.clone()).boxed()),
        EMBEDDINGS => json(answers.embeddings.clone()),
        _ => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"{}")).boxed());
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    };
    Ok(response)
}

fn json(bytes: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(bytes).boxed());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn sse(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    response
}

/// The first chunk now, the rest after `hold`.
fn held_stream(answers: &'static Answers) -> Response<Body> {
    let frames = stream::unfold(0u8, move |step| async move {
        match step {
            0 => Some((Ok(Frame::data(answers.first.clone())), 1)),
            1 => {
                tokio::time::sleep(answers.hold).await;
                Some((Ok(Frame::data(answers.rest.clone())), 2))
            }
            _ => None,
        }
    });
    sse(BodyExt::boxed(StreamBody::new(frames)))
}
