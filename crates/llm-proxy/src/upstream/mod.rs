//! The connection to the target endpoint: one pooled HTTP client, the credential it presents,
//! and the errors a target can cause.
//!
//! The target is fixed by configuration. Nothing from a client request chooses the host, the
//! scheme or the credential; a client only contributes a path under `/v1`, headers and a body.

mod credential;
pub mod headers;
pub mod mask;
pub mod oauth;
pub mod sse;
pub mod target_error;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use bytes::Bytes;
pub use credential::Credential;
use http_body_util::BodyExt;
pub use oauth::{TokenError, TokenObserver, TokenSource, TokenStatus};
use transport::Transport;
pub use transport::{BuildError, OutgoingBody, PathError, pem_certificates, tls_config};

use crate::clock::Clock;
use crate::config::{CredentialConfig, Limits, TargetApi, TargetConfig};
use crate::error_chain::{find, is_length_limit};
use crate::timed_body::BodyTimeout;

/// The target and how to reach it.
#[derive(Debug)]
pub struct UpstreamClient {
    transport: Transport,
    host: String,
    credential: Arc<Credential>,
    request_timeout: Duration,
    api: TargetApi,
    /// Headers the target's API requires on every request (`anthropic-version`).
    api_headers: HeaderMap,
}

/// The target's answer: its head, and a body still to be read.
pub type TargetResponse = axum::http::Response<hyper::body::Incoming>;

/// At most this many of the target's (same-origin) redirects are followed for one request.
const MAX_REDIRECTS: usize = 5;

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
    /// The client stopped sending its streamed body while it was being forwarded.
    #[error(transparent)]
    RequestBodyTimeout(BodyTimeout),
    #[error(transparent)]
    Path(#[from] PathError),
}

impl UpstreamClient {
    pub fn new(
        target: &TargetConfig,
        limits: &Limits,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn TokenObserver>,
    ) -> Result<Self, BuildError> {
        let endpoint = &target.endpoint;
        let host = endpoint.host_str().unwrap_or_default().to_owned();
        let tls = tls_config(target.extra_roots_pem.as_deref())?;
        let credential = match &target.credential {
            CredentialConfig::None => Credential::None,
            CredentialConfig::ApiKey(key) => Credential::api_key(key, target.api),
            CredentialConfig::OAuth(oauth) => {
                // The token server is asked once an hour or so: reqwest's conveniences (forms,
                // JSON, its own proxy handling) cost nothing there.
                let http = reqwest::Client::builder()
                    .tls_backend_preconfigured(tls.clone())
                    .connect_timeout(limits.connect_timeout)
                    .tcp_nodelay(true)
                    // A redirect would carry the client secret to wherever it points.
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?;
                Credential::OAuth(Arc::new(TokenSource::new(
                    oauth.clone(),
                    http,
                    clock,
                    observer,
                )))
            }
        };
        Ok(Self {
            api: target.api,
            api_headers: api_headers(target.api),
            transport: Transport::new(endpoint, tls, limits.connect_timeout)?,
            host,
            credential: Arc::new(credential),
            request_timeout: limits.request_timeout,
        })
    }

    /// The OAuth token source, whose background refresh the server runs and whose status
    /// `/health` shows.
    pub fn token_source(&self) -> Option<&Arc<TokenSource>> {
        self.credential.token_source()
    }

    /// The API the target speaks.
    pub fn api(&self) -> TargetApi {
        self.api
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends one request and returns the response head (the body is still to be read), within
    /// the request timeout. `path_and_query` is what followed `/v1` in the client's request.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        client_headers: &HeaderMap,
        body: OutgoingBody,
    ) -> Result<TargetResponse, UpstreamError> {
        tokio::time::timeout(
            self.request_timeout,
            self.send_untimed(method, path_and_query, client_headers, body),
        )
        .await
        .map_err(|_| self.timeout_error())?
    }

    /// One whole exchange, the answer's body read, within the request timeout.
    pub async fn exchange(
        &self,
        method: Method,
        path_and_query: &str,
        client_headers: &HeaderMap,
        body: OutgoingBody,
    ) -> Result<(axum::http::response::Parts, Bytes), UpstreamError> {
        let exchange = async {
            let response = self
                .send_untimed(method, path_and_query, client_headers, body)
                .await?;
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.map_err(|e| self.body_error(&e))?;
            Ok((parts, bytes.to_bytes()))
        };
        tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| self.timeout_error())?
    }

    /// The rest of an answer's body, read whole within the request timeout.
    pub async fn read_body(&self, response: TargetResponse) -> Result<Bytes, UpstreamError> {
        tokio::time::timeout(self.request_timeout, response.into_body().collect())
            .await
            .map_err(|_| self.timeout_error())?
            .map(http_body_util::Collected::to_bytes)
            .map_err(|e| self.body_error(&e))
    }

    /// [`Self::send`] without the timeout: the callers above apply it.
    ///
    ///
    /// When the target rejects an OAuth token with 401, the token is dropped and, if the body
    /// can be sent again (it is held in memory), the request is replayed once with a new one.
    /// Nothing has reached the client yet at that point. A second 401 is returned as it is.
    /// Redirects within the target's origin are followed as browsers do; any other is
    /// returned as it is.
    async fn send_untimed(
        &self,
        mut method: Method,
        path_and_query: &str,
        client_headers: &HeaderMap,
        body: OutgoingBody,
    ) -> Result<TargetResponse, UpstreamError> {
        let mut uri = self.transport.uri(path_and_query)?;
        // A body in memory can be sent again: after a rejected token or a redirect.
        let replay = match &body {
            OutgoingBody::Bytes(bytes) => Some(bytes.clone()),
            OutgoingBody::Stream(_) => None,
        };
        let mut dropped = false;
        let mut authorization = self.credential.authorization().await?;
        let mut response = self
            .dispatch(
                &method,
                &uri,
                client_headers,
                authorization.as_ref(),
                Some(body),
            )
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED
            && let (Some(rejected), Some(again)) = (&authorization, &replay)
            && self.credential.rejected(rejected)
        {
            let again = Some(OutgoingBody::Bytes(again.clone()));
            drop(response);
            authorization = self.credential.authorization().await?;
            response = self
                .dispatch(&method, &uri, client_headers, authorization.as_ref(), again)
                .await?;
        }
        for _ in 0..MAX_REDIRECTS {
            let Some(next) = self.redirect(&response, &uri) else {
                break;
            };
            let status = response.status();
            // 303, and 301/302 after a POST, continue with a GET and no body; 307 and 308
            // repeat the request, which needs the body again.
            let body = if status == StatusCode::SEE_OTHER && method != Method::HEAD
                || matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                    && method == Method::POST
            {
                method = Method::GET;
                dropped = true;
                None
            } else if dropped {
                None
            } else {
                match &replay {
                    Some(bytes) => Some(OutgoingBody::Bytes(bytes.clone())),
                    None => break,
                }
            };
            drop(response);
            uri = next;
            response = self
                .dispatch(&method, &uri, client_headers, authorization.as_ref(), body)
                .await?;
        }
        Ok(response)
    }

    /// Where a redirect from the target points, when it is one to follow: on the target's own
    /// origin, since anywhere else would be handed the target credential.
    fn redirect(
        &self,
        response: &TargetResponse,
        from: &axum::http::Uri,
    ) -> Option<axum::http::Uri> {
        if !matches!(
            response.status(),
            StatusCode::MOVED_PERMANENTLY
                | StatusCode::FOUND
                | StatusCode::SEE_OTHER
                | StatusCode::TEMPORARY_REDIRECT
                | StatusCode::PERMANENT_REDIRECT
        ) {
            return None;
        }
        let location = response
            .headers()
            .get(axum::http::header::LOCATION)?
            .to_str()
            .ok()?;
        let next = url::Url::parse(&from.to_string())
            .ok()?
            .join(location)
            .ok()?;
        let next: axum::http::Uri = next.as_str().parse().ok()?;
        self.transport.same_origin(&next).then_some(next)
    }

    async fn dispatch(
        &self,
        method: &Method,
        uri: &axum::http::Uri,
        client_headers: &HeaderMap,
        authorization: Option<&oauth::Authorization>,
        // `None`: a redirect turned the request into a GET without a body.
        body: Option<OutgoingBody>,
    ) -> Result<TargetResponse, UpstreamError> {
        let mut headers = headers::forwarded_request_headers(client_headers);
        if let Some(authorization) = authorization {
            headers.insert(authorization.name.clone(), authorization.header.clone());
        }
        for (name, value) in &self.api_headers {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        let body = match body {
            Some(body) => body,
            None => {
                // What described the client's body no longer applies.
                headers.remove(axum::http::header::CONTENT_TYPE);
                headers.remove(axum::http::header::CONTENT_LENGTH);
                OutgoingBody::from(Bytes::new())
            }
        };
        self.transport
            .send(method.clone(), uri.clone(), headers, body)
            .await
            .map_err(|e| self.send_error(&e))
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Turns a failure to get the target's answer into an error fit for a client: the host and
    /// the root cause, never the full URL.
    fn send_error(&self, err: &hyper_util::client::legacy::Error) -> UpstreamError {
        if is_length_limit(err) {
            return UpstreamError::RequestTooLarge;
        }
        if let Some(timeout) = find::<BodyTimeout>(err) {
            return UpstreamError::RequestBodyTimeout(BodyTimeout(timeout.0));
        }
        let detail = with_ca_hint(root_cause(err), "target");
        let garbled =
            find::<hyper::Error>(err).is_some_and(|e| e.is_parse() || e.is_parse_status());
        if garbled {
            return self.malformed(detail);
        }
        UpstreamError::Unreachable {
            host: self.host.clone(),
            detail,
        }
    }

    /// A failure while reading the target's body: it was cut or garbled.
    pub fn body_error(&self, err: &hyper::Error) -> UpstreamError {
        self.malformed(root_cause(err))
    }

    fn timeout_error(&self) -> UpstreamError {
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

    /// A success answer's headers and body with the target credential masked ([`mask`]);
    /// the body as it is when there is no credential.
    pub fn masked(&self, headers: &mut HeaderMap, body: axum::body::Body) -> axum::body::Body {
        if matches!(*self.credential, Credential::None) {
            return body;
        }
        mask::mask_headers(&self.credential, headers);
        axum::body::Body::new(mask::MaskedBody::new(body, self.credential.clone()))
    }

    /// The target credential, for masking it where the answer is rebuilt rather than relayed.
    pub fn credential(&self) -> Arc<Credential> {
        self.credential.clone()
    }

    /// Removes the target credential from text the target sent back (some echo the key in
    /// their error messages) before it reaches a client or a log.
    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        self.credential.redact(text)
    }
}

/// Headers every request to a target of this API carries.
pub fn api_headers(api: TargetApi) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in crate::formats::extra_headers(api) {
        headers.insert(*name, axum::http::HeaderValue::from_static(value));
    }
    headers
}

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
