//! Defences that come before any token is checked: the `Host` header (DNS rebinding), CORS and
//! the cap on concurrent requests.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::OwnedSemaphorePermit;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::error::ProxyError;
use crate::state::AppState;

/// Refuses requests whose `Host` names something other than this machine or a configured
/// name. A web page that rebinds its own domain to 127.0.0.1 still sends its domain as the
/// host, so it is stopped here before it can try a token.
pub async fn check_host(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ProxyError> {
    // Checked in place: this runs for every request, so it allocates nothing.
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    // RFC 9112 section 3.2: a server answers 400 to a request with two Hosts, and to an
    // HTTP/1.1 request with none.
    if hosts.next().is_some() {
        return Err(ProxyError::BadHost(
            "The request has more than one Host header.",
        ));
    }
    if host.is_none() && request.version() == Version::HTTP_11 {
        return Err(ProxyError::BadHost(
            "An HTTP/1.1 request must have a Host header.",
        ));
    }
    let allowed = match host.and_then(|v| v.to_str().ok()) {
        Some(host) => host_allowed(host, &state),
        // HTTP/2 names the host in `:authority`; without either (HTTP/1.0 tools) there is
        // no browser, and so no rebinding.
        None => request
            .uri()
            .authority()
            .is_none_or(|a| host_allowed(a.as_str(), &state)),
    };
    if !allowed {
        return Err(ProxyError::HostNotAllowed);
    }
    Ok(next.run(request).await)
}

fn host_allowed(host: &str, state: &AppState) -> bool {
    let name = strip_port(host);
    let lower_ends_with = |suffix: &str| {
        let (name, suffix) = (name.as_bytes(), suffix.as_bytes());
        name.len() >= suffix.len() && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    if name.eq_ignore_ascii_case("localhost") || lower_ends_with(".localhost") {
        return true;
    }
    if let Ok(ip) = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        && (ip.is_loopback() || ip == state.local_addr().ip())
    {
        return true;
    }
    let config = state.config();
    config.base_url.as_ref().and_then(|u| u.host_str()).is_some_and(|h| h.eq_ignore_ascii_case(name))
        // Allowed names are stored in lower case (cli.rs).
        || config.access.allowed_hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// `host:port`, `[v6]:port` or a bare name, without the port.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest
            .split(']')
            .next()
            .map_or(host, |inner| &host[..inner.len() + 2]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// CORS for the configured origins only; `None` when there are none, so no browser page from
/// elsewhere can read a response. Preflights accept what the OpenAI SDKs send
/// (`authorization`, `content-type`, `x-stainless-*`, `openai-*`) by mirroring the request.
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("openai-processing-ms"),
                header::RETRY_AFTER,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// Holds one of the server's request slots for as long as the response body lives, streams
/// included; when none is free the request is refused at once with 503 and `Retry-After`.
pub async fn limit_concurrency(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ProxyError> {
    let permit = state
        .request_slots()
        .clone()
        .try_acquire_owned()
        .map_err(|_| ProxyError::Overloaded)?;
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(
        parts,
        Body::new(SlotBody {
            inner: body,
            _permit: permit,
        }),
    ))
}

/// A body that returns its request slot when it is dropped.
struct SlotBody {
    inner: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for SlotBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The client's address, as the accept loop recorded it.
pub fn peer(request_extensions: &axum::http::Extensions) -> Option<IpAddr> {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client's address as an extractor; `None` when the router runs without the accept
/// loop (router tests).
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(peer(&parts.extensions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_every_host_form() {
        assert_eq!(strip_port("localhost:3000"), "localhost");
        assert_eq!(strip_port("[::1]:3000"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("example.com"), "example.com");
    }
}
