//! Relays a target's server-sent events to the client, event by event as they arrive.
//!
//! Bytes pass through untouched. The relay only finds event boundaries (a blank line), so that
//! a client never receives half an event, and watches for three ways a stream can go wrong:
//! the connection breaks, the target falls silent past the idle limit, or the stream ends
//! without `data: [DONE]`. Each ends the stream with one last OpenAI error event, so a client
//! sees an error instead of a silently truncated answer.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, stream};
use memchr::memmem;

use crate::error::ErrorBody;

/// Where a stream stands; kept by the relay between chunks.
struct Relay<S> {
    upstream: S,
    /// Bytes of an event whose end has not arrived yet.
    pending: BytesMut,
    idle_timeout: Duration,
    done_seen: bool,
    finished: bool,
    host: String,
}

/// Wraps the target's byte stream. The returned stream never yields an error: failures become
/// a final `data: {"error":...}` event, since a 200 with a broken body is all a client could
/// otherwise see.
pub fn relay<S, E>(
    upstream: S,
    idle_timeout: Duration,
    host: String,
) -> impl Stream<Item = Result<Bytes, std::io::Error>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
    E: std::error::Error + 'static,
{
    let state = Relay {
        upstream,
        pending: BytesMut::new(),
        idle_timeout,
        done_seen: false,
        finished: false,
        host,
    };
    stream::unfold(state, |mut relay| async move {
        loop {
            if relay.finished {
                return None;
            }
            match tokio::time::timeout(relay.idle_timeout, relay.upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    if let Some(events) = relay.complete_events(chunk) {
                        return Some((Ok(events), relay));
                    }
                }
                Ok(Some(Err(err))) => {
                    let message = format!(
                        "The stream from the target {} broke off: {}",
                        relay.host,
                        super::root_cause(&err)
                    );
                    return Some((Ok(relay.fail(message)), relay));
                }
                Ok(None) if relay.done_seen || relay.only_whitespace_pending() => {
                    relay.finished = true;
                    if relay.done_seen {
                        return None;
                    }
                    let message = format!(
                        "The stream from the target {} ended without [DONE]",
                        relay.host
                    );
                    return Some((Ok(relay.fail(message)), relay));
                }
                Ok(None) => {
                    let message = format!(
                        "The stream from the target {} ended in the middle of an event",
                        relay.host
                    );
                    return Some((Ok(relay.fail(message)), relay));
                }
                Err(_) => {
                    let message = format!(
                        "The target {} sent nothing for {} s inside a stream (STREAM_IDLE_TIMEOUT_SECONDS)",
                        relay.host,
                        relay.idle_timeout.as_secs_f64()
                    );
                    return Some((Ok(relay.fail(message)), relay));
                }
            }
        }
    })
}

impl<S> Relay<S> {
    /// Returns the complete events now available, or `None` when the chunk ended inside an
    /// event. The common case, a chunk holding whole events, passes without a copy.
    fn complete_events(&mut self, chunk: Bytes) -> Option<Bytes> {
        let ready = if self.pending.is_empty() && ends_with_boundary(&chunk) {
            chunk
        } else {
            self.pending.extend_from_slice(&chunk);
            let end = last_boundary_end(&self.pending)?;
            self.pending.split_to(end).freeze()
        };
        if !self.done_seen && memmem::find(&ready, b"[DONE]").is_some() {
            self.done_seen = true;
        }
        Some(ready)
    }

    fn only_whitespace_pending(&self) -> bool {
        self.pending.iter().all(u8::is_ascii_whitespace)
    }

    /// The final event. A partial event the target left behind is dropped: half a JSON
    /// object would only make the client fail to parse.
    fn fail(&mut self, message: String) -> Bytes {
        self.finished = true;
        self.pending.clear();
        tracing::warn!(%message, "stream from target failed");
        error_event(&ErrorBody::new(
            message,
            "server_error",
            None,
            Some("upstream_stream_error"),
        ))
    }
}

/// `data: {"error":{...}}` followed by the blank line that ends an event.
pub fn error_event(body: &ErrorBody<'_>) -> Bytes {
    let json = body.to_json();
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn ends_with_boundary(bytes: &[u8]) -> bool {
    bytes.ends_with(b"\n\n") || bytes.ends_with(b"\r\n\r\n") || bytes.ends_with(b"\r\r")
}

/// End of the last complete event: just past the last blank line, whichever line endings the
/// target uses (SSE allows `\n`, `\r\n` and `\r`).
fn last_boundary_end(bytes: &[u8]) -> Option<usize> {
    [&b"\n\n"[..], b"\r\n\r\n", b"\r\r"]
        .iter()
        .filter_map(|sep| memmem::rfind(bytes, sep).map(|at| at + sep.len()))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(chunks: Vec<Result<&'static str, &'static str>>) -> Vec<String> {
        let upstream = stream::iter(chunks.into_iter().map(|c| {
            c.map(|s| Bytes::from_static(s.as_bytes()))
                .map_err(std::io::Error::other)
        }));
        relay(upstream, Duration::from_secs(5), "target.test".into())
            .map(|r| String::from_utf8(r.unwrap().to_vec()).unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn whole_events_pass_unchanged() {
        let out = run(vec![Ok("data: {\"a\":1}\n\n"), Ok("data: [DONE]\n\n")]).await;
        assert_eq!(out, vec!["data: {\"a\":1}\n\n", "data: [DONE]\n\n"]);
    }

    #[tokio::test]
    async fn split_events_are_joined_at_boundaries() {
        let out = run(vec![
            Ok("data: {\"a\""),
            Ok(":1}\n\ndata: {\"b"),
            Ok("\":2}\n\ndata: [DO"),
            Ok("NE]\n\n"),
        ])
        .await;
        assert_eq!(
            out.concat(),
            "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n"
        );
        assert_eq!(out[0], "data: {\"a\":1}\n\n");
    }

    #[tokio::test]
    async fn crlf_events_are_recognised() {
        let out = run(vec![Ok("data: {}\r\n\r\ndata: [DONE]\r\n\r\n")]).await;
        assert_eq!(out, vec!["data: {}\r\n\r\ndata: [DONE]\r\n\r\n"]);
    }

    #[tokio::test]
    async fn a_broken_connection_ends_with_an_error_event_and_no_half_event() {
        let out = run(vec![
            Ok("data: {\"a\":1}\n\ndata: {\"par"),
            Err("connection reset"),
        ])
        .await;
        assert_eq!(out[0], "data: {\"a\":1}\n\n");
        assert_eq!(out.len(), 2);
        let last: serde_json::Value =
            serde_json::from_str(out[1].trim().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(last["error"]["code"], "upstream_stream_error");
        assert!(
            last["error"]["message"]
                .as_str()
                .unwrap()
                .contains("connection reset")
        );
    }

    #[tokio::test]
    async fn a_clean_end_without_done_is_reported() {
        let out = run(vec![Ok("data: {\"a\":1}\n\n")]).await;
        assert_eq!(out.len(), 2);
        assert!(out[1].contains("without [DONE]"));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_past_the_idle_limit_ends_the_stream() {
        let upstream = stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(
            b"data: {}\n\n",
        ))])
        .chain(stream::pending());
        let out: Vec<Bytes> = relay(Box::pin(upstream), Duration::from_secs(30), "t".into())
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(out.len(), 2);
        assert!(String::from_utf8_lossy(&out[1]).contains("sent nothing for 30 s"));
    }
}
