use futures_util::StreamExt;

use super::*;

fn parse_all(chunks: &[&[u8]], limit: usize) -> (Vec<SseEvent>, Option<TooLarge>) {
    let mut parser = SseParser::new(limit);
    let mut out = VecDeque::new();
    for chunk in chunks {
        if let Err(error) = parser.feed(chunk, &mut out) {
            return (out.into(), Some(error));
        }
    }
    (out.into(), None)
}

fn data(text: &str) -> SseEvent {
    SseEvent {
        event: None,
        data: text.to_owned(),
    }
}

#[test]
fn every_line_end_and_chunking_gives_the_same_events() {
    let text = b"data: a\n\ndata: b\r\ndata: c\r\n\r\n: comment\revent: done\rdata:[DONE]\r\r";
    let expected = vec![
        data("a"),
        data("b\nc"),
        SseEvent {
            event: Some("done".into()),
            data: "[DONE]".into(),
        },
    ];
    for size in 1..text.len() {
        let chunks: Vec<&[u8]> = text.chunks(size).collect();
        assert_eq!(parse_all(&chunks, 1024), (expected.clone(), None), "{size}");
    }
}

#[test]
fn fields_without_value_and_unknown_fields() {
    let (events, _) = parse_all(&[b"id: 7\nretry: 5\ndata\n\nevent: x\n\ndata: y\n\n"], 64);
    // `data` alone is an empty data line; an event with no data is not dispatched, and its
    // name does not leak into the next one.
    assert_eq!(events, vec![data(""), data("y")]);
}

#[test]
fn an_unfinished_event_at_the_end_is_dropped() {
    assert_eq!(parse_all(&[b"data: a\n\ndata: b\n"], 64).0, vec![data("a")]);
}

#[test]
fn bad_utf8_spoils_only_its_own_event() {
    let (events, error) = parse_all(&[b"data: \"a\xffb\"\n\ndata: \"ok\"\n\n"], 64);
    assert_eq!(error, None);
    assert_eq!(events, vec![data("\"a\u{fffd}b\""), data("\"ok\"")]);
}

#[test]
fn a_long_line_hits_the_cap() {
    let (events, error) = parse_all(&[b"data: ok\n\n", &[b'x'; 100]], 64);
    assert_eq!(events, vec![data("ok")]);
    assert_eq!(error, Some(TooLarge { limit: 64 }));
    // Many short data lines add up to one large event.
    let many = b"data: 0123456789\n".repeat(10);
    assert!(parse_all(&[&many], 64).1.is_some());
}

/// 16 MB in one line, fed 64 KB at a time, ends with the error once the cap is reached; each
/// byte is looked at once, so this takes milliseconds (`cargo bench --bench sse` has numbers).
#[tokio::test]
async fn sixteen_megabytes_in_one_line_end_in_the_error() {
    let limit = 4 << 20;
    let mut chunks = vec![Ok::<_, std::convert::Infallible>(Bytes::from_static(
        b"data: {\"first\":1}\n\ndata: ",
    ))];
    chunks.extend((0..256).map(|_| Ok(Bytes::from(vec![b'a'; 64 << 10]))));
    let mut stream = SseStream::new(futures_util::stream::iter(chunks), limit);
    assert_eq!(stream.next().await.unwrap().unwrap(), data("{\"first\":1}"));
    assert!(matches!(
        stream.next().await,
        Some(Err(SseError::TooLarge(TooLarge { limit: l }))) if l == limit
    ));
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn a_transport_error_ends_the_stream() {
    let chunks = vec![Ok(Bytes::from_static(b"data: a\n\n")), Err("gone")];
    let items: Vec<_> = SseStream::new(futures_util::stream::iter(chunks), 64)
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert!(matches!(items[1], Err(SseError::Transport("gone"))));
}
