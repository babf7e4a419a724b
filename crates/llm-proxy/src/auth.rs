//! The access token that guards `/v1` and `/api`: presented as `Authorization: Bearer`, or as
//! `api-key` / `x-api-key` for Azure- and Anthropic-style clients, and compared in constant time.
//! The dashboard in a browser may present a session cookie instead ([`crate::sessions`]).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::credential_headers::{API_KEY, X_API_KEY};
use crate::error::ProxyError;
use crate::sessions::session_cookie;
use crate::state::AppState;

pub async fn require_access_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ProxyError> {
    authorize(
        &state,
        request.headers(),
        crate::guard::peer(request.extensions()),
    )?;
    Ok(next.run(request).await)
}

/// The dashboard API: the token as for `/v1`, or a session cookie from `POST /api/login`.
pub async fn require_dashboard_access(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ProxyError> {
    authorize_dashboard(
        &state,
        request.headers(),
        crate::guard::peer(request.extensions()),
    )?;
    Ok(next.run(request).await)
}

/// A dashboard session cookie, or else the token as [`authorize`] checks it.
pub fn authorize_dashboard(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> Result<(), ProxyError> {
    match session_cookie(headers) {
        Some(session) if state.sessions().is_valid(session) => Ok(()),
        _ => authorize(state, headers, peer),
    }
}

/// The token check with the failure limit around it. The right token is always accepted: every
/// local tool shares the loopback address, so a lockout that refused it would let one
/// misconfigured (or hostile) tool lock out all the others. A wrong token from a source that
/// failed too often is refused without counting; any other wrong token counts against it.
pub fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> Result<(), ProxyError> {
    limited(state, check(headers, state.access_token()), peer)
}

/// [`authorize`] for a token presented on its own (the dashboard's login form).
pub fn authorize_token(
    state: &AppState,
    presented: &str,
    peer: Option<std::net::IpAddr>,
) -> Result<(), ProxyError> {
    let checked = match presented.trim().as_bytes() {
        [] => Err(ProxyError::MissingToken),
        candidate if bool::from(candidate.ct_eq(state.access_token())) => Ok(()),
        _ => Err(ProxyError::InvalidToken),
    };
    limited(state, checked, peer)
}

/// The failure limit around a token check's result.
fn limited(
    state: &AppState,
    checked: Result<(), ProxyError>,
    peer: Option<std::net::IpAddr>,
) -> Result<(), ProxyError> {
    // Only a wrong token is a guess; a missing one is a misconfigured tool (and counting those
    // would let any page lock the user's own tools out by sending requests without one).
    if matches!(checked, Err(ProxyError::InvalidToken))
        && let Some(ip) = peer
    {
        let limiter = state.auth_limiter();
        limiter
            .check(ip)
            .map_err(|retry_after| ProxyError::TooManyAuthFailures { retry_after })?;
        limiter.failed(ip);
    }
    checked
}

/// Accepts the request when any of the places a client may put a key holds the token. The
/// presented value is never echoed: a mistyped key is often a real key for something else.
pub fn check(headers: &HeaderMap, token: &[u8]) -> Result<(), ProxyError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().as_bytes());
    let presented = [
        bearer,
        headers.get(API_KEY).map(|v| v.as_bytes()),
        headers.get(X_API_KEY).map(|v| v.as_bytes()),
    ];
    let mut any = false;
    for candidate in presented.into_iter().flatten().filter(|c| !c.is_empty()) {
        any = true;
        if bool::from(candidate.ct_eq(token)) {
            return Ok(());
        }
    }
    Err(if any {
        ProxyError::InvalidToken
    } else {
        ProxyError::MissingToken
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn accepts_each_header_form() {
        let token = b"tok";
        assert!(check(&headers(&[("authorization", "Bearer tok")]), token).is_ok());
        assert!(check(&headers(&[("authorization", "bearer tok")]), token).is_ok());
        assert!(check(&headers(&[("api-key", "tok")]), token).is_ok());
        assert!(check(&headers(&[("x-api-key", "tok")]), token).is_ok());
    }

    #[test]
    fn tells_missing_from_wrong() {
        let token = b"tok";
        assert!(matches!(
            check(&headers(&[]), token),
            Err(ProxyError::MissingToken)
        ));
        assert!(matches!(
            check(&headers(&[("authorization", "Basic tok")]), token),
            Err(ProxyError::MissingToken)
        ));
        assert!(matches!(
            check(&headers(&[("authorization", "Bearer to")]), token),
            Err(ProxyError::InvalidToken)
        ));
        assert!(matches!(
            check(&headers(&[("x-api-key", "tokk")]), token),
            Err(ProxyError::InvalidToken)
        ));
    }
}
