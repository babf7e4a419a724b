//! OAuth 2.0 client credentials (RFC 6749 section 4.4) for the target: the token is fetched in
//! the background at startup, cached in memory only, replaced before it expires, and replaced
//! at once when the target rejects it.
//!
//! Concurrency: a request takes the cached token without waiting as long as it is valid, even
//! while a replacement is being fetched. Only a request that finds no valid token waits, on the
//! same single fetch as every other such request (`refresh_lock`). While the token server is
//! failing, requests fail fast with the last error until the backoff allows the next attempt.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use base64::Engine;
use bytes::Bytes;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{ClientAuth, OAuthConfig};

/// A token server gets this long to answer one token request.
const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Lifetime assumed when the server does not say (`expires_in` is only RECOMMENDED).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// A token fetched because the target refused the last one is kept this long whatever the
/// target says: if it refuses a fresh token too, a new one will not help, and an identity
/// provider throttles or blocks a client that asks on every 401.
const REJECTION_COOLDOWN: Duration = Duration::from_secs(30);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Why no token could be had. Carries no secret: whatever the server sent is scrubbed of the
/// client secret in each form it was sent (plain, form-encoded, and the Basic credentials).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token server {host} could not be reached: {detail}")]
    Unreachable { host: String, detail: String },
    #[error("the token server {host} did not answer within {} s", TOKEN_REQUEST_TIMEOUT.as_secs())]
    Timeout { host: String },
    #[error("the token server {host} refused the request: HTTP {status}{}{}",
            code.as_deref().map(|c| format!(", {c}")).unwrap_or_default(),
            description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Rejected {
        host: String,
        status: u16,
        code: Option<String>,
        description: Option<String>,
    },
    #[error("the token server {host} sent an unusable answer: {detail}")]
    Malformed { host: String, detail: String },
}

/// The header to send and which token it holds, so a 401 can drop exactly that token.
impl TokenError {
    /// What `/health`, which needs no token, may say: the kind of failure and the status code,
    /// never the token server's own words (which may echo the request).
    pub fn summary(&self) -> String {
        match self {
            Self::Unreachable { .. } => {
                "the OAuth token could not be obtained: the token server could not be reached"
                    .into()
            }
            Self::Timeout { .. } => {
                "the OAuth token could not be obtained: the token server did not answer in time"
                    .into()
            }
            Self::Rejected { status, .. } => {
                format!(
                    "the OAuth token could not be obtained: the token server answered HTTP {status}"
                )
            }
            Self::Malformed { .. } => {
                "the OAuth token could not be obtained: the token server sent an unusable answer"
                    .into()
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Authorization {
    /// `Authorization`, or the header the target's API takes a key in (`x-api-key`).
    pub name: HeaderName,
    pub header: HeaderValue,
    pub generation: u64,
}

/// What users and the dashboard may see of the token: its health, never its value.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TokenStatus {
    /// Unix seconds.
    pub valid_until: Option<u64>,
    /// Unix seconds of the last successful fetch.
    pub last_refresh: Option<u64>,
    pub refresh_count: u64,
    pub last_error: Option<String>,
    /// A token server quirk worth knowing (a `token_type` other than bearer).
    pub warning: Option<String>,
    /// How the client authenticates to the token server now (`auto` resolves to one).
    pub client_auth: &'static str,
}

/// Told of every token fetch: the server events and metrics.
pub trait TokenObserver: Send + Sync {
    fn obtained(&self, lifetime: Duration, refresh_count: u64);
    fn failed(&self, error: &TokenError, retry_in: Duration);
}

pub struct TokenSource {
    observer: Arc<dyn TokenObserver>,
    config: OAuthConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    host: String,
    state: Mutex<State>,
    /// Held for the duration of one fetch: the single flight.
    refresh_lock: tokio::sync::Mutex<()>,
    /// Wakes the background task when the token was dropped.
    dropped: Notify,
    /// In `auto` mode: the server rejected Basic and accepted the form body.
    use_form: AtomicBool,
    /// The `Authorization: Basic` value, built once.
    basic: HeaderValue,
    /// Every form in which the client secret leaves the proxy, longest first.
    secret_forms: Vec<SecretString>,
}

#[derive(Default)]
struct State {
    token: Option<Token>,
    generation: u64,
    refresh_count: u64,
    last_refresh: Option<SystemTime>,
    last_error: Option<TokenError>,
    failures: u32,
    /// Set while backing off after a failure: no new attempt before it.
    retry_at: Option<SystemTime>,
    /// The token was dropped because the target refused it: the next one replaces it.
    replacing_rejected: bool,
    warning: Option<String>,
}

struct Token {
    header: HeaderValue,
    value: SecretString,
    issued_at: SystemTime,
    expires_at: SystemTime,
    generation: u64,
    /// Fetched because the target refused the token before it.
    after_rejection: bool,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub fn new(
        config: OAuthConfig,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn TokenObserver>,
    ) -> Self {
        let host = config
            .token_endpoint
            .host_str()
            .unwrap_or_default()
            .to_owned();
        let basic = basic_header(&config.client_id, config.client_secret.expose_secret());
        let secret_forms = secret_forms(&basic, config.client_secret.expose_secret());
        Self {
            basic,
            secret_forms,
            observer,
            config,
            http,
            clock,
            host,
            state: Mutex::new(State::default()),
            refresh_lock: tokio::sync::Mutex::new(()),
            dropped: Notify::new(),
            use_form: AtomicBool::new(false),
        }
    }

    /// The current token, fetching one first if there is none that is valid.
    pub async fn authorization(&self) -> Result<Authorization, TokenError> {
        if let Some(auth) = self.usable()? {
            return Ok(auth);
        }
        let _flight = self.refresh_lock.lock().await;
        // Whoever held the lock before us may have fetched one already.
        if let Some(auth) = self.usable()? {
            return Ok(auth);
        }
        self.fetch_and_store().await
    }

    /// The target refused this token. Drops it, unless it has been replaced already (then the
    /// replacement is tried) or it was itself fetched for a refused one less than
    /// [`REJECTION_COOLDOWN`] ago (then it is kept). Returns whether a retry could succeed.
    pub fn reject(&self, generation: u64) -> bool {
        let now = self.clock.now();
        let mut state = self.lock();
        let Some(token) = state.token.as_ref() else {
            return true;
        };
        if token.generation != generation {
            return true;
        }
        if token.after_rejection && now < token.issued_at + REJECTION_COOLDOWN {
            tracing::info!("target rejected a fresh OAuth token; keeping it for now");
            return false;
        }
        state.token = None;
        state.replacing_rejected = true;
        drop(state);
        tracing::info!("target rejected the OAuth token; fetching a new one");
        self.dropped.notify_one();
        true
    }

    /// The status with the last error in full (scrubbed), for callers that hold the access token.
    pub fn status(&self) -> TokenStatus {
        self.status_with(|error| error.to_string())
    }

    /// The status as `/health` shows it to anyone: the last error only as its summary.
    pub fn public_status(&self) -> TokenStatus {
        self.status_with(TokenError::summary)
    }

    fn status_with(&self, describe: impl Fn(&TokenError) -> String) -> TokenStatus {
        let state = self.lock();
        let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).ok();
        TokenStatus {
            valid_until: state.token.as_ref().and_then(|t| unix(t.expires_at)),
            last_refresh: state.last_refresh.and_then(unix),
            refresh_count: state.refresh_count,
            last_error: state.last_error.as_ref().map(describe),
            warning: state.warning.clone(),
            client_auth: match (
                self.config.client_auth,
                self.use_form.load(Ordering::Relaxed),
            ) {
                (ClientAuth::Basic, _) | (ClientAuth::Auto, false) => "basic",
                (ClientAuth::Post, _) | (ClientAuth::Auto, true) => "post",
            },
        }
    }

    /// Removes the token and the client secret, in every form it was sent, from text that may
    /// echo them.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for form in &self.secret_forms {
            if out.contains(form.expose_secret()) {
                out = out.replace(form.expose_secret(), "[redacted]");
            }
        }
        if let Some(token) = &self.lock().token {
            out = out.replace(token.value.expose_secret(), "[redacted]");
        }
        out
    }

    /// Calls `each` with the token and the client secret in every form it is sent.
    pub fn each_secret(&self, each: &mut dyn FnMut(&[u8])) {
        if let Some(token) = &self.lock().token {
            each(token.value.expose_secret().as_bytes());
        }
        for form in &self.secret_forms {
            each(form.expose_secret().as_bytes());
        }
    }

    /// `bytes` with the token and the client secret (in every form sent) overwritten.
    pub fn mask(&self, bytes: Bytes) -> Bytes {
        let state = self.lock();
        let token = state
            .token
            .as_ref()
            .map(|t| t.value.expose_secret().as_bytes());
        let forms = self
            .secret_forms
            .iter()
            .map(|f| f.expose_secret().as_bytes());
        super::mask::mask_all(bytes, token.into_iter().chain(forms))
    }

    /// Keeps a fresh token until shutdown: fetches at startup, replaces the token before it
    /// expires, retries failures with backoff, and replaces a dropped token at once.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let due = self.next_fetch_at();
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.dropped.notified() => continue,
                () = self.clock.sleep_until(due) => {}
            }
            let _flight = self.refresh_lock.lock().await;
            // A request may have fetched while we waited for the lock.
            if self.next_fetch_at() > self.clock.now() {
                continue;
            }
            let _ = self.fetch_and_store().await;
        }
    }

    /// When the background task should fetch next.
    fn next_fetch_at(&self) -> SystemTime {
        let state = self.lock();
        if let Some(retry_at) = state.retry_at {
            return retry_at;
        }
        match &state.token {
            None => UNIX_EPOCH,
            Some(token) => {
                let lifetime = token
                    .expires_at
                    .duration_since(token.issued_at)
                    .unwrap_or_default();
                // Replace at expiry minus the buffer; a token that lives less than the buffer
                // would be replaced at once, forever, so it is replaced at half its life.
                if lifetime > self.config.refresh_buffer {
                    token.expires_at - self.config.refresh_buffer
                } else {
                    token.issued_at + lifetime / 2
                }
            }
        }
    }

    /// The token if it is still valid; the last error if we are backing off without one.
    fn usable(&self) -> Result<Option<Authorization>, TokenError> {
        let state = self.lock();
        let now = self.clock.now();
        if let Some(token) = &state.token
            && now < token.expires_at
        {
            return Ok(Some(Authorization {
                name: AUTHORIZATION,
                header: token.header.clone(),
                generation: token.generation,
            }));
        }
        match (&state.last_error, state.retry_at) {
            (Some(error), Some(retry_at)) if now < retry_at => Err(error.clone()),
            _ => Ok(None),
        }
    }

    async fn fetch_and_store(&self) -> Result<Authorization, TokenError> {
        // Lifetimes and backoff count from when the request was sent: a token is never
        // believed to live longer than it does, however slow the token server was.
        let now = self.clock.now();
        let result = self.fetch().await.and_then(|fetched| {
            let mut header =
                HeaderValue::from_str(&format!("Bearer {}", fetched.access_token.expose_secret()))
                    .map_err(|_| {
                        self.malformed("access_token contains characters not allowed in a header")
                    })?;
            header.set_sensitive(true);
            Ok((fetched, header))
        });
        let mut state = self.lock();
        match result {
            Ok((fetched, header)) => {
                state.generation += 1;
                let generation = state.generation;
                state.token = Some(Token {
                    header: header.clone(),
                    value: fetched.access_token,
                    issued_at: now,
                    expires_at: now + fetched.lifetime,
                    generation,
                    after_rejection: std::mem::take(&mut state.replacing_rejected),
                });
                state.refresh_count += 1;
                state.last_refresh = Some(now);
                state.last_error = None;
                state.failures = 0;
                state.retry_at = None;
                state.warning = fetched.warning;
                let refresh_count = state.refresh_count;
                drop(state);
                tracing::info!(
                    expires_in_s = fetched.lifetime.as_secs(),
                    refresh = refresh_count,
                    "OAuth token obtained"
                );
                self.observer.obtained(fetched.lifetime, refresh_count);
                Ok(Authorization {
                    name: AUTHORIZATION,
                    header,
                    generation,
                })
            }
            Err(error) => {
                state.failures += 1;
                let delay = backoff(state.failures);
                state.retry_at = Some(now + delay);
                state.last_error = Some(error.clone());
                drop(state);
                tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "OAuth token fetch failed");
                self.observer.failed(&error, delay);
                Err(error)
            }
        }
    }

    async fn fetch(&self) -> Result<Fetched, TokenError> {
        let form = match self.config.client_auth {
            ClientAuth::Basic => false,
            ClientAuth::Post => true,
            ClientAuth::Auto => self.use_form.load(Ordering::Relaxed),
        };
        let first = self.request(form).await;
        let client_rejected = matches!(&first, Err(TokenError::Rejected { status, code, .. })
            if *status == 401 || code.as_deref() == Some("invalid_client"));
        if self.config.client_auth == ClientAuth::Auto && !form && client_rejected {
            let second = self.request(true).await;
            if second.is_ok() {
                tracing::info!(
                    "token server accepts client credentials only in the form body; using that from now on"
                );
                self.use_form.store(true, Ordering::Relaxed);
            }
            return second;
        }
        first
    }

    /// One token request, with the client credentials as HTTP Basic or in the form body.
    async fn request(&self, credentials_in_form: bool) -> Result<Fetched, TokenError> {
        let secret = self.config.client_secret.expose_secret();
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.config.scope {
            form.push(("scope", scope));
        }
        if let Some(audience) = &self.config.audience {
            form.push(("audience", audience));
        }
        let mut request = self
            .http
            .post(self.config.token_endpoint.clone())
            .header(header::ACCEPT, "application/json")
            .timeout(TOKEN_REQUEST_TIMEOUT);
        if credentials_in_form {
            form.push(("client_id", &self.config.client_id));
            form.push(("client_secret", secret));
        } else {
            request = request.header(header::AUTHORIZATION, self.basic.clone());
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.transport(&e))?;
        if !status.is_success() {
            return Err(self.rejected(status, &body));
        }
        self.parse(&body)
    }

    fn parse(&self, body: &[u8]) -> Result<Fetched, TokenError> {
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: Option<String>,
            expires_in: Option<Value>,
            token_type: Option<String>,
        }
        let response: TokenResponse = serde_json::from_slice(body).map_err(|_| {
            self.malformed(format!(
                "expected a JSON object, got {}",
                self.excerpt(body)
            ))
        })?;
        let access_token = response
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.malformed("the answer has no access_token"))?;
        // Some servers (Azure AD v1) send expires_in as a string.
        let lifetime = match response.expires_in {
            None | Some(Value::Null) => DEFAULT_LIFETIME,
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Duration::from_secs)
                .ok_or_else(|| self.malformed("expires_in is not a whole number of seconds"))?,
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Duration::from_secs)
                .map_err(|_| self.malformed("expires_in is not a number"))?,
            Some(_) => return Err(self.malformed("expires_in is not a number")),
        };
        if lifetime.is_zero() {
            return Err(self.malformed("expires_in is 0"));
        }
        let warning = response
            .token_type
            .filter(|t| !t.eq_ignore_ascii_case("bearer"))
            .map(|t| format!("the token server issued a token of type {t:?}, not bearer; it is sent as a bearer token"));
        if let Some(warning) = &warning {
            tracing::warn!(%warning, "unexpected OAuth token type");
        }
        Ok(Fetched {
            access_token: SecretString::from(access_token),
            lifetime,
            warning,
        })
    }

    fn rejected(&self, status: StatusCode, body: &[u8]) -> TokenError {
        #[derive(Deserialize)]
        struct OAuthError {
            error: Option<Value>,
            error_description: Option<String>,
        }
        let parsed: Option<OAuthError> = serde_json::from_slice(body).ok();
        let (code, description) = match parsed {
            Some(e) => (
                e.error.and_then(|v| v.as_str().map(|c| self.redact(c))),
                e.error_description.map(|d| self.redact(&d)),
            ),
            None if body.is_empty() => (None, None),
            None => (None, Some(self.excerpt(body))),
        };
        TokenError::Rejected {
            host: self.host.clone(),
            status: status.as_u16(),
            code,
            description,
        }
    }

    /// The start of a body, scrubbed whole before it is cut (a cut could split a secret).
    fn excerpt(&self, body: &[u8]) -> String {
        excerpt(&self.redact(&String::from_utf8_lossy(body)))
    }

    fn transport(&self, err: &reqwest::Error) -> TokenError {
        if err.is_timeout() {
            return TokenError::Timeout {
                host: self.host.clone(),
            };
        }
        let detail = super::with_ca_hint(super::root_cause(err), "token server");
        TokenError::Unreachable {
            host: self.host.clone(),
            detail,
        }
    }

    fn malformed(&self, detail: impl Into<String>) -> TokenError {
        TokenError::Malformed {
            host: self.host.clone(),
            detail: detail.into(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding it; if one did, the state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Fetched {
    access_token: SecretString,
    lifetime: Duration,
    warning: Option<String>,
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, as RFC 6749 section 2.3.1 specifies.
fn basic_header(id: &str, secret: &str) -> HeaderValue {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = format!("{}:{}", encode(id), encode(secret));
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

/// The secret as typed, as form-encoded in a body, and the Basic credentials that contain it.
fn secret_forms(basic: &HeaderValue, secret: &str) -> Vec<SecretString> {
    let mut forms = vec![secret.to_owned()];
    let form_encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    forms.push(form_encoded);
    if let Some(credentials) = basic.to_str().ok().and_then(|v| v.strip_prefix("Basic ")) {
        forms.push(credentials.to_owned());
    }
    forms.retain(|form| !form.is_empty());
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms.dedup();
    forms.into_iter().map(SecretString::from).collect()
}

/// 1 s, 2 s, 4 s ... up to 60 s, each scaled by a random factor in [0.5, 1) so that many
/// proxies restarted together do not hit the token server in step.
fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let base = BACKOFF_FIRST.saturating_mul(1 << exponent).min(BACKOFF_MAX);
    base.mul_f64(rand::rng().random_range(0.5..1.0))
}

fn excerpt(text: &str) -> String {
    let plain: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match plain.char_indices().nth(120) {
        Some((cut, _)) => format!("{:?}…", &plain[..cut]),
        None => format!("{plain:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_encodes_credentials_per_rfc_6749() {
        // "a b" and "p:w" are form-encoded before base64, as section 2.3.1 requires.
        let value = basic_header("a b", "p:w");
        let encoded = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(decoded, b"a+b:p%3Aw");
        assert!(value.is_sensitive());
    }

    #[test]
    fn the_secret_is_scrubbed_in_each_form_it_is_sent() {
        let secret = "p@ss w/rd";
        let basic = basic_header("id", secret);
        let forms = secret_forms(&basic, secret);
        let exposed: Vec<&str> = forms.iter().map(|f| f.expose_secret()).collect();
        let credentials = basic.to_str().unwrap().strip_prefix("Basic ").unwrap();
        assert_eq!(exposed, [credentials, "p%40ss+w%2Frd", secret]);
    }

    #[test]
    fn backoff_grows_to_a_minute_with_jitter() {
        for (failures, max) in [(1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (50, 60.0)] {
            let delay = backoff(failures).as_secs_f64();
            assert!(delay >= max / 2.0 && delay < max, "{failures}: {delay}");
        }
    }

    #[test]
    fn error_messages_name_status_and_oauth_code() {
        let err = TokenError::Rejected {
            host: "login.example".into(),
            status: 401,
            code: Some("invalid_client".into()),
            description: Some("bad secret".into()),
        };
        assert_eq!(
            err.to_string(),
            "the token server login.example refused the request: HTTP 401, invalid_client: bad secret"
        );
    }
}
