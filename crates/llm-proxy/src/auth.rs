//! The access token that guards `/v1`: presented as `Authorization: Bearer`, or as `api-key`
//! / `x-api-key` for Azure- and Anthropic-style clients, and compared in constant time.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::error::ProxyError;
use crate::server::AppState;

pub async fn require_access_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ProxyError> {
    check(request.headers(), state.access_token())?;
    Ok(next.run(request).await)
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
        headers.get("api-key").map(|v| v.as_bytes()),
        headers.get("x-api-key").map(|v| v.as_bytes()),
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
