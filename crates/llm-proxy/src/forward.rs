//! Sending a client's request to the target and its answer back, in the three ways requests
//! come: a JSON exchange read whole, a stream of events relayed as it arrives, and any other
//! `/v1` request passed through with its body streamed both ways.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde::de::IgnoredAny;

use crate::error::ProxyError;
use crate::logs::record::UpstreamTime;
use crate::request::check_declared_length;
use crate::upstream::{OutgoingBody, UpstreamClient, UpstreamError, headers, sse, target_error};

/// What the client sent, less its body.
pub struct Outgoing<'a> {
    pub method: Method,
    /// What followed `/v1` in the client's URL, query included.
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
}

/// A JSON request answered with one JSON body. The target's success body is checked to be
/// JSON (a cut or garbled body is a 502, never a 200 the client cannot parse) and otherwise
/// passed on untouched.
pub async fn json_exchange(
    up: &UpstreamClient,
    out: Outgoing<'_>,
    body: Bytes,
) -> Result<Response, ProxyError> {
    let sent = Instant::now();
    let exchange = async {
        let response = up
            .send(
                out.method,
                out.path_and_query,
                out.headers,
                OutgoingBody::Bytes(body),
            )
            .await?;
        let status = response.status();
        let headers = headers::returned_response_headers(response.headers());
        let bytes = response.bytes().await.map_err(|e| up.transport_error(&e))?;
        Ok::<_, UpstreamError>((status, headers, bytes))
    };
    let (status, headers, bytes) = tokio::time::timeout(up.request_timeout(), exchange)
        .await
        .map_err(|_| up.timeout_error())??;
    if !status.is_success() {
        let body = target_error::classify(up, status, &bytes)?;
        return Ok(build(sent, status, headers, Body::from(body)));
    }
    if serde_json::from_slice::<IgnoredAny>(&bytes).is_err() {
        return Err(up
            .malformed(format!(
                "expected a JSON body, got {} bytes that are not JSON",
                bytes.len()
            ))
            .into());
    }
    Ok(build(sent, status, headers, Body::from(bytes)))
}

/// A request with `"stream": true`. Events are relayed as the target sends them; the target's
/// errors before the stream starts are answered like any other error.
pub async fn event_stream(
    up: &UpstreamClient,
    out: Outgoing<'_>,
    body: Bytes,
    idle_timeout: Duration,
) -> Result<Response, ProxyError> {
    let sent = Instant::now();
    let response = tokio::time::timeout(
        up.request_timeout(),
        up.send(
            out.method,
            out.path_and_query,
            out.headers,
            OutgoingBody::Bytes(body),
        ),
    )
    .await
    .map_err(|_| up.timeout_error())??;
    let status = response.status();
    let is_event_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !status.is_success() || !is_event_stream {
        // An error, or a target that answered a stream request with one body: read it whole.
        let headers = headers::returned_response_headers(response.headers());
        let bytes = tokio::time::timeout(up.request_timeout(), response.bytes())
            .await
            .map_err(|_| up.timeout_error())?
            .map_err(|e| up.transport_error(&e))?;
        if !status.is_success() {
            let body = target_error::classify(up, status, &bytes)?;
            return Ok(build(sent, status, headers, Body::from(body)));
        }
        return Ok(build(sent, status, headers, Body::from(bytes)));
    }
    let mut headers = headers::returned_response_headers(response.headers());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style buffering proxies in front of us (containers) to pass events at once.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    let events = sse::relay(response.bytes_stream(), idle_timeout, up.host().to_owned());
    Ok(build(sent, status, headers, Body::from_stream(events)))
}

/// Any other `/v1` request (files, audio, images, batches...): method, path, query, headers and
/// body go to the target as they are, streamed both ways, multipart included.
pub async fn pass_through(
    up: &UpstreamClient,
    out: Outgoing<'_>,
    body: Body,
    limit: usize,
) -> Result<Response, ProxyError> {
    check_declared_length(out.headers, limit)?;
    let body_stream = Limited::new(body, limit).into_data_stream();
    let body = OutgoingBody::Stream(reqwest::Body::wrap_stream(body_stream));
    let sent = Instant::now();
    let response = tokio::time::timeout(
        up.request_timeout(),
        up.send(out.method, out.path_and_query, out.headers, body),
    )
    .await
    .map_err(|_| up.timeout_error())?
    .map_err(|e| match e {
        UpstreamError::RequestTooLarge => ProxyError::BodyTooLarge { limit },
        other => other.into(),
    })?;
    let status = response.status();
    let headers = headers::returned_response_headers(response.headers());
    if !status.is_success() {
        let bytes = tokio::time::timeout(up.request_timeout(), response.bytes())
            .await
            .map_err(|_| up.timeout_error())?
            .map_err(|e| up.transport_error(&e))?;
        let body = target_error::classify(up, status, &bytes)?;
        return Ok(build(sent, status, headers, Body::from(body)));
    }
    Ok(build(
        sent,
        status,
        headers,
        Body::from_stream(response.bytes_stream()),
    ))
}

/// The response to the client, noting for the log how long the target took.
fn build(sent: Instant, status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    response
        .extensions_mut()
        .insert(UpstreamTime(sent.elapsed()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
