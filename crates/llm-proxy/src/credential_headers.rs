//! The request headers that carry credentials: where a client may present a key, and what is
//! never forwarded to the target, stored or shown.

use axum::http::{HeaderName, header};

/// Azure OpenAI's key header.
pub const API_KEY: HeaderName = HeaderName::from_static("api-key");
/// Anthropic's key header.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Every header that may hold a credential, the session cookie included.
pub const CREDENTIAL_HEADERS: [HeaderName; 5] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    API_KEY,
    X_API_KEY,
    header::COOKIE,
];

/// Whether a header of this (lower-case) name may hold a credential.
pub fn is_credential(name: &str) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|header| header.as_str() == name)
}
