//! Sending a client's request to the target and its answer back, in the three ways requests
//! come: a JSON exchange read whole, a stream of events relayed as it arrives, and any other
//! `/v1` request passed through with its body streamed both ways. The first two normalize what
//! the target says into OpenAI's shapes (`crate::normalize`); the third passes bytes.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Limited};
use tokio_util::sync::CancellationToken;

use crate::error::ProxyError;
use crate::formats::chat_stream::Assembled;
use crate::formats::sse::{self, Framing};
use crate::formats::usage::Usage;
use crate::normalize::stream::Transcoder;
use crate::normalize::{self, Changes, Expected, NormalizeError, RequestContext};
use crate::notes::{KnownUsage, NormalizationNote, StreamConclusion, UpstreamTime};
use crate::request::check_declared_length;
use crate::upstream::sse::{Conclusion, RelayOptions, relay};
use crate::upstream::{OutgoingBody, UpstreamClient, UpstreamError, headers, target_error};

/// What the client sent, less its body.
pub struct ClientRequest<'a> {
    pub method: Method,
    /// What followed `/v1` in the client's URL, query included.
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
    /// When the proxy took the request, when the answer is to carry `Server-Timing`.
    pub received: Option<Instant>,
}

/// What the client expects back, for normalization.
pub struct Expectation {
    pub shape: Expected,
    pub context: RequestContext,
}

/// A request answered with one JSON body. The target's answer is normalized to the expected
/// OpenAI shape (a body that needs nothing passes as the target's bytes); a cut, garbled or
/// unrecognisable body is a 502, never a 200 the client cannot parse.
pub async fn json_exchange(
    up: &UpstreamClient,
    out: ClientRequest<'_>,
    body: Bytes,
    expect: &Expectation,
) -> Result<Response, ProxyError> {
    let timing = Timing::start(out.received);
    let (head, bytes) = up
        .exchange(
            out.method,
            out.path_and_query,
            out.headers,
            OutgoingBody::from(body),
        )
        .await?;
    let status = head.status;
    let framing = Framing::of(&head.headers);
    let mut headers = headers::returned_response_headers(&head.headers);
    let timing = timing.answered();
    if !status.is_success() {
        return error_response(up, timing, status, headers, &bytes);
    }
    let answer = match (framing, expect.shape) {
        // The client did not ask to stream, but the target streamed: one answer from the chunks.
        (Some(framing), Expected::ChatCompletion) => {
            let (stream, changes) = assemble(up, framing, bytes, &expect.context).await?;
            let answer = normalize::completion_from_stream(stream, &expect.context);
            Answer {
                body: Bytes::from(serde_json::to_vec(&answer).unwrap_or_default()),
                changes: Some(noted(changes, "assembled one response from a stream")),
                usage: None,
            }
        }
        _ => in_expected_shape(up, &bytes, expect)?,
    };
    let note = Arc::new(OnceLock::new());
    if let Some(changes) = answer.changes {
        let _ = note.set(changes);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut response = respond(
        up,
        timing,
        status,
        headers,
        Body::from(answer.body),
        Some(note),
    );
    if let Some(usage) = answer.usage {
        response.extensions_mut().insert(KnownUsage(usage));
    }
    Ok(response)
}

/// A request with `"stream": true`. Events are relayed as the target sends them, repaired or
/// transcoded when they are not OpenAI's; a target that answered with one body gets its answer
/// turned into a proper stream. Errors before the stream starts are answered like any other.
pub async fn event_stream(
    up: &UpstreamClient,
    out: ClientRequest<'_>,
    body: Bytes,
    idle_timeout: Duration,
    cut_off: &CancellationToken,
    expect: &Expectation,
) -> Result<Response, ProxyError> {
    let timing = Timing::start(out.received);
    let response = up
        .send(
            out.method,
            out.path_and_query,
            out.headers,
            OutgoingBody::from(body),
        )
        .await?;
    let status = response.status();
    let framing = Framing::of(response.headers());
    let mut headers = headers::returned_response_headers(response.headers());
    let note = Arc::new(OnceLock::new());
    let Some(framing) = framing.filter(|_| status.is_success()) else {
        // An error, or a target that answered a stream request with one body: read it whole.
        let bytes = up.read_body(response).await?;
        let timing = timing.answered();
        if !status.is_success() {
            return error_response(up, timing, status, headers, &bytes);
        }
        let (body, changes) = synthesize_stream(up, &bytes, expect)?;
        let _ = note.set(changes);
        return Ok(respond(
            up,
            timing,
            status,
            event_stream_headers(headers),
            Body::from(body),
            Some(note),
        ));
    };
    // Chat streams are checked event by event; completion streams pass as they are.
    let transcoder = (expect.shape == Expected::ChatCompletion)
        .then(|| Transcoder::new(framing, &expect.context));
    let framing_for_relay = if transcoder.is_some() {
        framing
    } else {
        Framing::Sse
    };
    headers = event_stream_headers(headers);
    let conclusion = transcoder.as_ref().map(|_| StreamConclusion::default());
    let events = relay(
        response.into_body().into_data_stream(),
        RelayOptions {
            idle_timeout,
            host: up.host().to_owned(),
            framing: framing_for_relay,
            transcoder,
            note: Some(note.clone()),
            conclusion: conclusion.clone().map(|slot| Conclusion {
                slot,
                credential: up.credential(),
            }),
            cut_off: cut_off.clone(),
        },
    );
    let mut response = respond(
        up,
        timing.answered(),
        status,
        headers,
        Body::from_stream(events),
        Some(note),
    );
    if let Some(conclusion) = conclusion {
        response.extensions_mut().insert(conclusion);
    }
    Ok(response)
}

/// Any other `/v1` request (files, audio, images, batches...): method, path, query, headers and
/// body go to the target as they are, streamed both ways, multipart included.
pub async fn pass_through(
    up: &UpstreamClient,
    out: ClientRequest<'_>,
    body: Body,
    limit: usize,
) -> Result<Response, ProxyError> {
    check_declared_length(out.headers, limit)?;
    let timing = Timing::start(out.received);
    let body = OutgoingBody::Stream(Limited::new(body, limit));
    let response = up
        .send(out.method, out.path_and_query, out.headers, body)
        .await
        .map_err(|e| match e {
            UpstreamError::RequestTooLarge => ProxyError::BodyTooLarge { limit },
            other => other.into(),
        })?;
    let status = response.status();
    let headers = headers::returned_response_headers(response.headers());
    if !status.is_success() {
        let bytes = up.read_body(response).await?;
        return error_response(up, timing.answered(), status, headers, &bytes);
    }
    Ok(respond(
        up,
        timing.answered(),
        status,
        headers,
        Body::new(response.into_body()),
        None,
    ))
}

/// A success body in the expected shape, what it took, and its token usage when that was
/// read on the way.
struct Answer {
    body: Bytes,
    changes: Option<Changes>,
    usage: Option<Usage>,
}

/// A success body in the expected shape, or the reason it cannot be one.
fn in_expected_shape(
    up: &UpstreamClient,
    bytes: &Bytes,
    expect: &Expectation,
) -> Result<Answer, UpstreamError> {
    let normalized = normalize::response(bytes, expect.shape, &expect.context)
        .map_err(|err| unusable(up, bytes, err))?;
    Ok(Answer {
        body: normalized.body,
        changes: normalized.changes,
        usage: normalized.usage,
    })
}

/// Why a success body cannot be answered, as the target's fault.
fn unusable(up: &UpstreamClient, bytes: &[u8], err: NormalizeError) -> UpstreamError {
    match err {
        NormalizeError::NotJson => up.malformed(format!(
            "expected a JSON body, got {} bytes that are not JSON",
            bytes.len()
        )),
        err @ NormalizeError::Unrecognized(_) => up.malformed(err.to_string()),
    }
}

/// The SSE body for a client that asked to stream, from a target's single JSON answer, and
/// what it took: the answer is parsed once and its chunks written from that tree.
fn synthesize_stream(
    up: &UpstreamClient,
    bytes: &Bytes,
    expect: &Expectation,
) -> Result<(Bytes, Changes), UpstreamError> {
    let (answer, changes) = normalize::response_value(bytes, expect.shape, &expect.context)
        .map_err(|err| unusable(up, bytes, err))?;
    let mut out = Vec::new();
    match expect.shape {
        Expected::ChatCompletion => {
            for chunk in normalize::chunks_from_completion(&answer, expect.context.include_usage) {
                sse::push_event(&mut out, &chunk);
            }
        }
        // A completion as one chunk: the whole text with its finish reason.
        _ => sse::push_event(&mut out, &answer),
    }
    out.extend_from_slice(sse::DONE);
    let changes = Some(changes).filter(|c| !c.is_empty());
    Ok((
        Bytes::from(out),
        noted(changes, "synthesized a stream from one response"),
    ))
}

/// A whole stream body put back together by the same relay and transcoder a live stream
/// takes, and what the transcoder changed; an error when the stream is incomplete.
async fn assemble(
    up: &UpstreamClient,
    framing: Framing,
    bytes: Bytes,
    context: &RequestContext,
) -> Result<(Assembled, Option<Changes>), UpstreamError> {
    let note = Arc::new(OnceLock::new());
    let slot = StreamConclusion::default();
    let options = RelayOptions {
        idle_timeout: up.request_timeout(),
        host: up.host().to_owned(),
        framing,
        transcoder: Some(Transcoder::new(framing, context)),
        note: Some(note.clone()),
        conclusion: Some(Conclusion {
            slot: slot.clone(),
            credential: up.credential(),
        }),
        cut_off: CancellationToken::new(),
    };
    let pieces = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes)]);
    relay(pieces, options).for_each(|_| async {}).await;
    let stream = slot.take().unwrap_or_default();
    if let Some(message) = &stream.error {
        return Err(up.malformed(message.clone()));
    }
    Ok((stream, note.get().cloned()))
}

/// Recorded changes with `what` added (or started with it).
fn noted(changes: Option<Changes>, what: &str) -> Changes {
    let mut changes = changes.unwrap_or_else(|| Changes::new("openai"));
    changes.note(what);
    changes
}

/// The client's answer to a target error: its envelope passed on, or a foreign one translated.
fn error_response(
    up: &UpstreamClient,
    timing: Answered,
    status: StatusCode,
    headers: HeaderMap,
    bytes: &Bytes,
) -> Result<Response, ProxyError> {
    let (status, body) = target_error::classify(up, status, bytes)?;
    Ok(respond(
        up,
        timing,
        status,
        json_headers(headers),
        Body::from(body),
        None,
    ))
}

fn json_headers(mut headers: HeaderMap) -> HeaderMap {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers
}

fn event_stream_headers(mut headers: HeaderMap) -> HeaderMap {
    sse::set_stream_headers(&mut headers);
    headers
}

/// When the request came and when it went to the target.
struct Timing {
    received: Option<Instant>,
    sent: Instant,
}

impl Timing {
    fn start(received: Option<Instant>) -> Self {
        Self {
            received,
            sent: Instant::now(),
        }
    }

    /// The target has answered (its head, or the whole body when that is read at once): what
    /// follows is the proxy's work again.
    fn answered(&self) -> Answered {
        Answered {
            received: self.received,
            upstream: self.sent.elapsed(),
        }
    }
}

/// The target's share of a request, known.
#[derive(Clone, Copy)]
struct Answered {
    received: Option<Instant>,
    upstream: Duration,
}

/// `proxy;dur=…, upstream;dur=…` in milliseconds, for clients and browsers that show it: the
/// proxy's share is everything but the wait for the target. Whole microseconds, formatted as
/// integers: float formatting showed in the request's profile.
fn server_timing(proxy: Duration, upstream: Duration) -> String {
    let (p, u) = (proxy.as_micros(), upstream.as_micros());
    format!(
        "proxy;dur={}.{:03}, upstream;dur={}.{:03}",
        p / 1000,
        p % 1000,
        u / 1000,
        u % 1000
    )
}

/// The response to the client, noting for the log how long the target took and what
/// normalization changed.
/// The client's response, with the target credential masked wherever the target echoed it.
fn respond(
    up: &UpstreamClient,
    timing: Answered,
    status: StatusCode,
    mut headers: HeaderMap,
    body: Body,
    note: Option<Arc<OnceLock<Changes>>>,
) -> Response {
    let body = up.masked(&mut headers, body);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    let upstream = timing.upstream;
    if let Some(received) = timing.received {
        let proxy = received.elapsed().saturating_sub(upstream);
        if let Ok(value) = HeaderValue::from_str(&server_timing(proxy, upstream)) {
            response.headers_mut().append("server-timing", value);
        }
    }
    response.extensions_mut().insert(UpstreamTime(upstream));
    if let Some(note) = note {
        response.extensions_mut().insert(NormalizationNote(note));
    }
    response
}
