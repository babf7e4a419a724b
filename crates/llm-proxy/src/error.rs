//! Errors that reach a client, always in OpenAI's envelope
//! `{"error":{"message","type","param","code"}}` with all four keys present, because the SDKs
//! and coding tools parse exactly that shape to show the user what went wrong.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::formats::chat::Untranslatable;
use crate::formats::openai::{ErrorBody, error_kind};
use crate::timed_body::BodyTimeout;
use crate::upstream::UpstreamError;

/// Every way a request can fail before or instead of a target's own answer.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A request the target's API (`TARGET_API`) cannot express.
    #[error(transparent)]
    Untranslatable(#[from] Untranslatable),
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<&'static str>,
        code: Option<&'static str>,
    },
    #[error("missing access token")]
    MissingToken,
    #[error("invalid access token")]
    InvalidToken,
    #[error("request body too large")]
    BodyTooLarge { limit: usize },
    #[error(transparent)]
    BodyTimeout(#[from] BodyTimeout),
    #[error("not found")]
    NotFound { message: String, code: &'static str },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("host not allowed")]
    HostNotAllowed,
    /// A `Host` header missing or repeated; the message says which.
    #[error("{0}")]
    BadHost(&'static str),
    #[error("too many requests in flight")]
    Overloaded,
    #[error("too many failed authentications")]
    TooManyAuthFailures { retry_after: u64 },
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl ProxyError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: None,
            code: None,
        }
    }

    pub fn missing_param(param: &'static str) -> Self {
        Self::InvalidRequest {
            message: format!("Missing required parameter: '{param}'."),
            param: Some(param),
            code: Some("missing_required_parameter"),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } | Self::Untranslatable(_) => StatusCode::BAD_REQUEST,
            Self::MissingToken | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::HostNotAllowed => StatusCode::FORBIDDEN,
            Self::BadHost(_) => StatusCode::BAD_REQUEST,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyAuthFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream(err) => match err {
                UpstreamError::Unreachable { .. } | UpstreamError::Malformed { .. } => {
                    StatusCode::BAD_GATEWAY
                }
                UpstreamError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
                // A target's 4xx is the client's business (bad parameter, unknown model, rate
                // limit) and keeps its status; a 5xx is ours to report as a bad gateway.
                UpstreamError::Target { status, .. } if status.is_client_error() => *status,
                UpstreamError::Target { .. } | UpstreamError::Token(_) => StatusCode::BAD_GATEWAY,
                UpstreamError::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                UpstreamError::RequestBodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
                UpstreamError::Path(_) => StatusCode::BAD_REQUEST,
            },
        }
    }

    /// The message a user reads, as the error envelope words it (for callers that do not
    /// answer over HTTP, such as the desktop window's commands).
    pub fn user_message(&self) -> String {
        self.envelope().message().to_owned()
    }

    fn envelope(&self) -> ErrorBody<'_> {
        match self {
            Self::Untranslatable(untranslatable) => ErrorBody::new(
                untranslatable.message.clone(),
                "invalid_request_error",
                untranslatable.param.as_deref(),
                // A parameter the target cannot take; a body it cannot read names none.
                untranslatable
                    .param
                    .is_some()
                    .then_some("unsupported_parameter"),
            ),
            Self::InvalidRequest {
                message,
                param,
                code,
            } => ErrorBody::new(message.clone(), "invalid_request_error", *param, *code),
            Self::MissingToken => ErrorBody::new(
                "You didn't provide an API key. Send the proxy's access token as \
                 'Authorization: Bearer <token>' (or in an 'api-key' or 'x-api-key' header). \
                 The token is shown in the proxy's startup banner and dashboard."
                    .into(),
                "invalid_request_error",
                None,
                Some("invalid_api_key"),
            ),
            Self::InvalidToken => ErrorBody::new(
                "Incorrect API key provided. Use the access token shown in the proxy's startup \
                 banner and dashboard."
                    .into(),
                "invalid_request_error",
                None,
                Some("invalid_api_key"),
            ),
            Self::BodyTooLarge { limit } => ErrorBody::new(
                format!(
                    "Request body is larger than the proxy's limit of {} MB (MAX_REQUEST_BODY_MB).",
                    limit / (1024 * 1024)
                ),
                "invalid_request_error",
                None,
                Some("request_too_large"),
            ),
            Self::BodyTimeout(timeout) => ErrorBody::new(
                format!("{}; the request was given up.", capitalized(&timeout.to_string())),
                "invalid_request_error",
                None,
                Some("request_timeout"),
            ),
            Self::NotFound { message, code } => {
                ErrorBody::new(message.clone(), "invalid_request_error", None, Some(code))
            }
            Self::MethodNotAllowed => ErrorBody::new(
                "Method not allowed for this path.".into(),
                "invalid_request_error",
                None,
                Some("method_not_allowed"),
            ),
            Self::HostNotAllowed => ErrorBody::new(
                "This host name is not allowed. Use http://localhost, or add the name to PROXY_ALLOWED_HOSTS."
                    .into(),
                "invalid_request_error",
                None,
                Some("host_not_allowed"),
            ),
            Self::BadHost(message) => ErrorBody::new(
                (*message).into(),
                "invalid_request_error",
                None,
                Some("invalid_host_header"),
            ),
            Self::Overloaded => ErrorBody::new(
                "The proxy is serving as many requests as it is allowed to (PROXY_MAX_CONCURRENCY). Retry shortly."
                    .into(),
                "server_error",
                None,
                Some("overloaded"),
            ),
            Self::TooManyAuthFailures { retry_after } => ErrorBody::new(
                format!("Too many requests with a wrong access token from this address. Try again in {retry_after} s."),
                "rate_limit_error",
                None,
                Some("rate_limit_exceeded"),
            ),
            Self::Upstream(err) => upstream_envelope(err),
        }
    }
}

/// The envelope of a failure at the target: its message, and a type and code by kind.
fn upstream_envelope(err: &UpstreamError) -> ErrorBody<'static> {
    let message = err.to_string();
    let (kind, code) = match err {
        UpstreamError::Unreachable { .. } => ("server_error", "upstream_unreachable"),
        UpstreamError::Timeout { .. } => ("server_error", "upstream_timeout"),
        UpstreamError::Malformed { .. } => ("server_error", "upstream_malformed_response"),
        UpstreamError::Token(_) => ("upstream_auth_error", "oauth_token_unavailable"),
        UpstreamError::RequestTooLarge => ("invalid_request_error", "request_too_large"),
        UpstreamError::RequestBodyTimeout(_) => ("invalid_request_error", "request_timeout"),
        UpstreamError::Path(_) => ("invalid_request_error", "invalid_path"),
        UpstreamError::Target { status, .. } => match error_kind(status.as_u16()) {
            (kind, Some(code)) => (kind, code),
            (kind, None) if status.is_client_error() => (kind, "upstream_client_error"),
            (kind, None) => (kind, "upstream_error"),
        },
    };
    ErrorBody::new(message, kind, None, Some(code))
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status(), &self.envelope());
        let retry_after = match &self {
            Self::Overloaded => Some(1),
            Self::TooManyAuthFailures { retry_after } => Some(*retry_after),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A request the extractors could not read (a query, path or JSON body of the wrong shape)
/// is a 400 in the envelope like any other bad input, not axum's plain-text rejection; a body
/// the client stopped sending is a 408.
macro_rules! rejection_is_invalid_request {
    ($($rejection:ty),*) => {$(
        impl From<$rejection> for ProxyError {
            fn from(rejection: $rejection) -> Self {
                match crate::error_chain::find::<BodyTimeout>(&rejection) {
                    Some(timeout) => Self::BodyTimeout(BodyTimeout(timeout.0)),
                    None => Self::invalid(rejection.body_text()),
                }
            }
        }
    )*};
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

rejection_is_invalid_request!(
    axum::extract::rejection::QueryRejection,
    axum::extract::rejection::PathRejection,
    axum::extract::rejection::JsonRejection
);

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Fallback for paths no route knows.
pub async fn not_found(axum::extract::OriginalUri(uri): axum::extract::OriginalUri) -> ProxyError {
    unknown_path(uri.path())
}

/// The 404 for `path`, the path as the client sent it (nested routers see less of it).
pub fn unknown_path(path: &str) -> ProxyError {
    ProxyError::NotFound {
        message: format!("Unknown path: {path}"),
        code: "unknown_url",
    }
}

/// Fallback for a known path asked with the wrong method.
pub async fn method_not_allowed() -> ProxyError {
    ProxyError::MethodNotAllowed
}
