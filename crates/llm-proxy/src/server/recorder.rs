//! The middleware that records every `/v1` call.
//!
//! It notes the request, lets the handler run, and wraps the response body so that what the
//! client receives is seen as it passes: the time of the first byte, the bytes themselves
//! (copies of small pieces, `Bytes` clones of large ones, compact copies for a stream), and
//! the end, whether the body finished or the client went away. The capture is queued for the
//! log writer when the body is done; nothing is parsed here.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::formats::sse::Framing;
use crate::logs::Log;
use crate::logs::compact::{EventCopy, HeaderCopy};
use crate::logs::record::{CallCapture, Collected};
use crate::notes::{CallNotes, KnownUsage, NormalizationNote, StreamConclusion, UpstreamTime};
use crate::state::AppState;

/// Response bytes kept for parsing usage and showing the body. Beyond this the record says
/// the body was not recorded in full; the client still gets all of it.
const COLLECT_LIMIT: usize = 8 * 1024 * 1024;

/// Pieces smaller than this are copied rather than shared: a small piece is a slice of a
/// connection's read buffer, and keeping the slice until the writer's batch would keep the
/// whole buffer (BENCHMARKS.md has the measurement).
const COPY_BELOW: usize = 16 * 1024;

pub async fn record_call(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let method = request.method().clone();
    let uri = request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().clone(), |o| o.0.clone());
    let path = match uri.query() {
        None => uri.path().to_owned(),
        Some(query) => format!("{}?{}", uri.path(), redact_query(query)),
    };
    let request_headers = HeaderCopy::of(request.headers());

    let response = next.run(request).await;
    let (mut parts, body) = response.into_parts();
    let event_stream = Framing::of(&parts.headers) == Some(Framing::Sse);
    let mut notes = parts.extensions.remove::<CallNotes>();
    if let Some(notes) = &mut notes
        && (event_stream || notes.request_body.len() < COPY_BELOW)
    {
        // Like the headers (see `compact`). A stream's is copied whatever its size: it would
        // keep the buffers for as long as the stream lasts.
        notes.request_body = Bytes::copy_from_slice(&notes.request_body);
    }
    let capture = CallCapture {
        started_at,
        method,
        path,
        request_headers,
        notes,
        status: parts.status.as_u16(),
        event_stream,
        ttfb: None,
        total: started.elapsed(),
        upstream: parts.extensions.remove::<UpstreamTime>().map(|t| t.0),
        response: match parts.extensions.remove::<StreamConclusion>() {
            Some(conclusion) if event_stream => Collected::Concluded(conclusion),
            _ if event_stream => Collected::Events(EventCopy::default()),
            _ => Collected::Body(Vec::new()),
        },
        response_complete: true,
        disconnected: false,
        normalization: parts.extensions.remove::<NormalizationNote>(),
        known_usage: parts.extensions.remove::<KnownUsage>(),
        bodies_shed: false,
    };
    let body = Body::new(RecordedBody {
        inner: body,
        started,
        collected: 0,
        final_event: false,
        capture: Some(capture),
        log: state.log().clone(),
    });
    Response::from_parts(parts, body)
}

/// Words in a query parameter's name that mark its value as a credential.
const CREDENTIAL_WORDS: [&str; 7] = [
    "key",
    "token",
    "secret",
    "password",
    "auth",
    "sig",
    "credential",
];

/// A query string with the values of credential-looking parameters (`api_key`, `key`,
/// `token`, ...) replaced: a tool that puts its key in the URL must not have it stored.
fn redact_query(query: &str) -> std::borrow::Cow<'_, str> {
    let is_credential = |name: &str| {
        let name = name.to_ascii_lowercase();
        CREDENTIAL_WORDS.iter().any(|word| name.contains(word))
    };
    let credential_in = |pair: &str| {
        pair.split_once('=')
            .is_some_and(|(name, _)| is_credential(name))
    };
    if !query.split('&').any(credential_in) {
        return std::borrow::Cow::Borrowed(query);
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_credential(name) => format!("{name}=[redacted]"),
            _ => pair.to_owned(),
        })
        .collect();
    std::borrow::Cow::Owned(pairs.join("&"))
}

/// A response body that records what passes through it.
struct RecordedBody {
    inner: Body,
    started: Instant,
    collected: usize,
    /// The stream's final event has gone out: the client has its whole answer.
    final_event: bool,
    /// Taken when the record is sent, so it is sent once.
    capture: Option<CallCapture>,
    log: Log,
}

impl RecordedBody {
    fn finish(&mut self, disconnected: bool) {
        if let Some(mut capture) = self.capture.take() {
            capture.total = self.started.elapsed();
            capture.disconnected = disconnected;
            self.log.record(capture);
        }
    }
}

impl HttpBody for RecordedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(capture)) = (frame.data_ref(), this.capture.as_mut()) {
                    if capture.ttfb.is_none() {
                        capture.ttfb = Some(this.started.elapsed());
                    }
                    if capture.event_stream {
                        this.final_event = crate::formats::sse::ends_with_final_event(data);
                    }
                    let room = this.collected + data.len() <= COLLECT_LIMIT;
                    match &mut capture.response {
                        // A transcoded stream: the relay hands over the answer it assembled.
                        Collected::Concluded(_) => {}
                        _ if !room => capture.response_complete = false,
                        Collected::Body(chunks) => {
                            this.collected += data.len();
                            chunks.push(if data.len() < COPY_BELOW {
                                Bytes::copy_from_slice(data)
                            } else {
                                data.clone()
                            });
                        }
                        // A stream's events are slices of the target connection's read buffer:
                        // copied, compactly, so as not to keep those buffers.
                        Collected::Events(events) => {
                            this.collected += data.len();
                            events.push(data);
                        }
                    }
                }
                if this.inner.is_end_stream() {
                    this.finish(false);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(true),
            Poll::Ready(None) => this.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for RecordedBody {
    /// Dropped before the end: the client went away (or the server is closing). A `HEAD`
    /// response's body is never sent, so dropping it is its end; a client that leaves after a
    /// stream's final event has had its answer.
    fn drop(&mut self) {
        let head = self
            .capture
            .as_ref()
            .is_some_and(|c| c.method == Method::HEAD);
        let complete = head || self.final_event || self.inner.is_end_stream();
        // A relay inside hands over its answer when dropped: drop it before the record goes.
        self.inner = Body::empty();
        self.finish(!complete);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_looking_query_values_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_query("api_key=sk-1&limit=2&Token=t&key=k&access_token=a&x=y=z"),
            "api_key=[redacted]&limit=2&Token=[redacted]&key=[redacted]&access_token=[redacted]&x=y=z"
        );
        assert!(matches!(
            redact_query("limit=2&after=abc"),
            std::borrow::Cow::Borrowed("limit=2&after=abc")
        ));
    }
}
