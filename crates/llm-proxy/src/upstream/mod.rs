//! The connection to the target endpoint: one pooled HTTP client, the credential it presents,
//! and the errors a target can cause.
//!
//! The target is fixed by configuration. Nothing from a client request chooses the host, the
//! scheme or the credential; a client only contributes a path under `/v1`, headers and a body.

mod credential;
pub mod headers;
pub mod oauth;
pub mod sse;
pub mod target_error;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use bytes::Bytes;
use reqwest::redirect;

pub use credential::Credential;
pub use oauth::{TokenError, TokenObserver, TokenSource, TokenStatus};

use crate::clock::Clock;
use crate::config::{CredentialConfig, Limits, TargetConfig};
use crate::error::ErrorBody;
use crate::request::is_length_limit;

/// The target and how to reach it. Cheap to share: `reqwest::Client` is a handle to one pool.
#[derive(Debug)]
pub struct UpstreamClient {
    http: reqwest::Client,
    /// The configured endpoint, parsed once; each request only sets its path and query (parsing
    /// a whole URL per request, host and IDNA included, showed in profiles).
    base: url::Url,
    /// The endpoint's path without a trailing slash, so `base_path + "/chat/completions"` works.
    base_path: String,
    host: String,
    credential: Credential,
    request_timeout: Duration,
}

/// Ways the target can fail us. Messages name the target's host, never a URL with a query,
/// never a credential.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not connect to the target {host}: {detail}")]
    Unreachable { host: String, detail: String },
    #[error("the target {host} did not answer within {after:?}")]
    Timeout { host: String, after: Duration },
    #[error("the target {host} sent a malformed or incomplete response: {detail}")]
    Malformed { host: String, detail: String },
    /// The target answered with an error that was not in OpenAI's envelope.
    #[error("the target {host} answered HTTP {status}: {excerpt}")]
    Target {
        host: String,
        status: StatusCode,
        excerpt: String,
    },
    #[error("could not obtain an OAuth access token for the target: {0}")]
    Token(#[from] TokenError),
    /// The client's streamed body went past the limit while being forwarded.
    #[error("request body too large")]
    RequestTooLarge,
}

impl UpstreamError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unreachable { .. } | Self::Malformed { .. } => StatusCode::BAD_GATEWAY,
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            // A target's 4xx is the client's business (bad parameter, unknown model, rate
            // limit) and keeps its status; a 5xx is ours to report as a bad gateway.
            Self::Target { status, .. } if status.is_client_error() => *status,
            Self::Target { .. } | Self::Token(_) => StatusCode::BAD_GATEWAY,
            Self::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    pub fn envelope(&self) -> ErrorBody<'static> {
        let message = self.to_string();
        match self {
            Self::Unreachable { .. } => {
                ErrorBody::new(message, "server_error", None, Some("upstream_unreachable"))
            }
            Self::Timeout { .. } => {
                ErrorBody::new(message, "server_error", None, Some("upstream_timeout"))
            }
            Self::Malformed { .. } => ErrorBody::new(
                message,
                "server_error",
                None,
                Some("upstream_malformed_response"),
            ),
            Self::Token(_) => ErrorBody::new(
                message,
                "upstream_auth_error",
                None,
                Some("oauth_token_unavailable"),
            ),
            Self::RequestTooLarge => ErrorBody::new(
                message,
                "invalid_request_error",
                None,
                Some("request_too_large"),
            ),
            Self::Target { status, .. } => {
                let (kind, code) = match status.as_u16() {
                    401 | 403 => ("invalid_request_error", "upstream_auth_failed"),
                    404 => ("invalid_request_error", "not_found"),
                    429 => ("rate_limit_error", "rate_limit_exceeded"),
                    400..=499 => ("invalid_request_error", "upstream_client_error"),
                    _ => ("server_error", "upstream_error"),
                };
                ErrorBody::new(message, kind, None, Some(code))
            }
        }
    }
}

impl UpstreamClient {
    pub fn new(
        target: &TargetConfig,
        limits: &Limits,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn TokenObserver>,
    ) -> Result<Self, reqwest::Error> {
        let endpoint = target.endpoint.clone();
        let host = endpoint.host_str().unwrap_or_default().to_owned();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            // Only same-origin redirects: following a target's redirect to another host would
            // hand that host the target credential.
            .redirect(same_origin_redirects(endpoint.clone()));
        if let Some(pem) = &target.extra_roots_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build()?;
        let credential = match &target.credential {
            CredentialConfig::None => Credential::None,
            CredentialConfig::ApiKey(key) => Credential::api_key(key),
            CredentialConfig::OAuth(oauth) => Credential::OAuth(Arc::new(TokenSource::new(
                oauth.clone(),
                http.clone(),
                clock,
                observer,
            ))),
        };
        Ok(Self {
            http,
            base_path: endpoint.path().trim_end_matches('/').to_owned(),
            base: endpoint.clone(),
            host,
            credential,
            request_timeout: limits.request_timeout,
        })
    }

    /// The OAuth token source, whose background refresh the server runs and whose status
    /// `/health` shows.
    pub fn token_source(&self) -> Option<&Arc<TokenSource>> {
        self.credential.token_source()
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends one request and returns the response head (the body is still to be read).
    /// `path_and_query` is what followed `/v1` in the client's request.
    ///
    /// When the target rejects an OAuth token with 401, the token is dropped and, if the body
    /// can be sent again (it is held in memory), the request is replayed once with a new one.
    /// Nothing has reached the client yet at that point. A second 401 is returned as it is.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        client_headers: &HeaderMap,
        body: OutgoingBody,
    ) -> Result<reqwest::Response, UpstreamError> {
        let (path, query) = path_and_query
            .split_once('?')
            .map_or((path_and_query, None), |(p, q)| (p, Some(q)));
        let mut url = self.base.clone();
        let mut full_path = String::with_capacity(self.base_path.len() + path.len());
        full_path.push_str(&self.base_path);
        full_path.push_str(path);
        url.set_path(&full_path);
        url.set_query(query);
        let headers = headers::forwarded_request_headers(client_headers);
        // Only an OAuth token can be replaced and the request replayed; only then keep copies.
        let replay = match (&body, self.credential.token_source().is_some()) {
            (OutgoingBody::Bytes(bytes), true) => Some((bytes.clone(), headers.clone())),
            _ => None,
        };
        let authorization = self.credential.authorization().await?;
        let response = self
            .dispatch(
                method.clone(),
                url.clone(),
                headers,
                authorization.as_ref(),
                body.into(),
            )
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let Some(rejected) = authorization else {
            return Ok(response);
        };
        if !self.credential.rejected(&rejected) {
            return Ok(response);
        }
        let Some((bytes, headers)) = replay else {
            return Ok(response);
        };
        drop(response);
        let authorization = self.credential.authorization().await?;
        self.dispatch(method, url, headers, authorization.as_ref(), bytes.into())
            .await
    }

    async fn dispatch(
        &self,
        method: Method,
        url: url::Url,
        mut headers: HeaderMap,
        authorization: Option<&oauth::Authorization>,
        body: reqwest::Body,
    ) -> Result<reqwest::Response, UpstreamError> {
        if let Some(authorization) = authorization {
            headers.insert(
                axum::http::header::AUTHORIZATION,
                authorization.header.clone(),
            );
        }
        let sent = self
            .http
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        sent.map_err(|e| {
            if is_length_limit(&e) {
                UpstreamError::RequestTooLarge
            } else {
                self.transport_error(&e)
            }
        })
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Turns a transport failure into an error fit for a client: the host and the root cause,
    /// never the full URL.
    pub fn transport_error(&self, err: &reqwest::Error) -> UpstreamError {
        let detail = with_ca_hint(root_cause(err), "target");
        if err.is_timeout() {
            return UpstreamError::Timeout {
                host: self.host.clone(),
                after: self.request_timeout,
            };
        }
        if err.is_connect() || (err.is_request() && !err.is_body()) {
            return UpstreamError::Unreachable {
                host: self.host.clone(),
                detail,
            };
        }
        UpstreamError::Malformed {
            host: self.host.clone(),
            detail,
        }
    }

    pub fn timeout_error(&self) -> UpstreamError {
        UpstreamError::Timeout {
            host: self.host.clone(),
            after: self.request_timeout,
        }
    }

    pub fn malformed(&self, detail: impl Into<String>) -> UpstreamError {
        UpstreamError::Malformed {
            host: self.host.clone(),
            detail: detail.into(),
        }
    }

    /// Removes the target credential from text the target sent back (some echo the key in
    /// their error messages) before it reaches a client or a log.
    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        self.credential.redact(text)
    }
}

/// A request body: in memory (replayable after a rejected token) or streamed from the client.
pub enum OutgoingBody {
    Bytes(Bytes),
    Stream(reqwest::Body),
}

impl From<OutgoingBody> for reqwest::Body {
    fn from(body: OutgoingBody) -> Self {
        match body {
            OutgoingBody::Bytes(bytes) => bytes.into(),
            OutgoingBody::Stream(stream) => stream,
        }
    }
}

fn same_origin_redirects(endpoint: url::Url) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        let same_origin = attempt.url().origin() == endpoint.origin();
        if !same_origin || attempt.previous().len() >= 5 {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// The innermost error message (e.g. "Connection refused (os error 111)"): the part a user
/// can act on, without reqwest's URL-bearing outer layers.
/// Certificate failures against company endpoints are nearly always an internal CA; say so.
pub fn with_ca_hint(mut detail: String, who: &str) -> String {
    if detail.to_ascii_lowercase().contains("certificate") {
        detail.push_str(&format!(
            " (if the {who} uses an internal CA, set TARGET_CA_CERT to its PEM file)"
        ));
    }
    detail
}

pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut source = err;
    while let Some(next) = source.source() {
        source = next;
    }
    let text = source.to_string();
    if text.contains("://") {
        // Only reqwest's own layer mentions the URL; say what kind of failure it was instead.
        return "the request failed".into();
    }
    text
}
