//! Test harness: the real proxy on `127.0.0.1:0`, a mock target that records what it receives
//! and fails in each way real endpoints do, and OpenAI schema validation.
#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use llm_proxy::config::{
    AccessToken, Config, CredentialConfig, Limits, TargetConfig, UpstreamConfig,
};
use llm_proxy::server::ServerHandle;
use secrecy::SecretString;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub mod anthropic;
pub mod binary;
pub mod gemini;
pub mod ollama;
pub mod pki;

/// A valid OpenAI chunk, which the proxy relays byte for byte.
pub const CHUNK: &str = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}";

pub const ACCESS_TOKEN: &str = "test-access-token-0123456789";
pub const TARGET_KEY: &str = "sk-target-key-should-never-leak-42";

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A configuration for tests: a known token, port 0, and the given upstream.
pub fn config(upstream: UpstreamConfig) -> Config {
    let mut config = Config::placeholder(0);
    config.access_token = AccessToken::supplied(ACCESS_TOKEN);
    config.upstream = upstream;
    config.data_dir = unique_data_dir();
    config
}

/// A fresh data directory for one server, so tests never share a log database.
pub fn unique_data_dir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let root = std::env::temp_dir().join("llm-proxy-tests");
    SWEPT.call_once(|| remove_finished_runs(&root));
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = root.join(format!("{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Removes the data directories of test processes that have ended. A directory cannot be
/// removed when its own test ends (a server may still be closing its database, and some tests
/// start a second server on the same directory), so each test binary sweeps up after the
/// earlier ones instead: repeated runs used to fill the disk.
fn remove_finished_runs(root: &std::path::Path) {
    let proc = std::path::Path::new("/proc");
    let (true, Ok(entries)) = (proc.is_dir(), std::fs::read_dir(root)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.split('-').next());
        if let Some(pid) = pid.filter(|p| p.parse::<u32>().is_ok())
            && !proc.join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

pub fn target_config(endpoint: &str, key: Option<&str>) -> UpstreamConfig {
    UpstreamConfig::Target(TargetConfig {
        endpoint: endpoint.parse().unwrap(),
        api: llm_proxy::config::TargetApi::OpenAi,
        credential: match key {
            Some(key) => CredentialConfig::ApiKey(SecretString::from(key.to_owned())),
            None => CredentialConfig::None,
        },
        extra_roots_pem: None,
    })
}

/// An axum app on `127.0.0.1:0`, served until the handle is aborted: every mock's server.
pub async fn serve_on_loopback(app: Router) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, server)
}

/// The real server, bound to `127.0.0.1:0`, with a client that knows its token.
pub struct TestProxy {
    pub handle: ServerHandle,
    pub url: String,
    pub http: reqwest::Client,
}

impl TestProxy {
    pub async fn placeholder() -> Self {
        Self::start(config(UpstreamConfig::Placeholder)).await
    }

    /// Forwarding to `target` with [`TARGET_KEY`]; `limits` adjusts timeouts for the test.
    pub async fn forwarding(target: &str, limits: impl FnOnce(&mut Limits)) -> Self {
        let mut config = config(target_config(target, Some(TARGET_KEY)));
        limits(&mut config.limits);
        Self::start(config).await
    }

    /// Forwarding to `target`, which speaks `api`, with [`TARGET_KEY`].
    pub async fn speaking(target: &str, api: llm_proxy::config::TargetApi) -> Self {
        let mut upstream = target_config(target, Some(TARGET_KEY));
        if let UpstreamConfig::Target(target) = &mut upstream {
            target.api = api;
        }
        Self::start(config(upstream)).await
    }

    pub async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handle = llm_proxy::serve(listener, config).unwrap();
        let url = format!("http://{}", handle.local_addr());
        // No proxy: the test machine's environment must not route loopback traffic elsewhere.
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self { handle, url, http }
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(ACCESS_TOKEN)
    }

    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.url))
            .bearer_auth(ACCESS_TOKEN)
            .json(body)
    }

    /// `get`, sent, its body read as JSON; for tests that care about the body, not the status.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).send().await.unwrap().json().await.unwrap()
    }

    pub async fn get_text(&self, path: &str) -> String {
        self.get(path).send().await.unwrap().text().await.unwrap()
    }

    /// A POST of these exact bytes as JSON, with the token: for bodies no serializer writes.
    pub fn post_raw(&self, path: &str, body: &'static str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.url))
            .bearer_auth(ACCESS_TOKEN)
            .header("content-type", "application/json")
            .body(body)
    }

    /// `post`, sent, its body read as JSON.
    pub async fn post_json(&self, path: &str, body: &Value) -> Value {
        self.post(path, body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn post_text(&self, path: &str, body: &Value) -> String {
        self.post(path, body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// One request as the mock target saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How the mock target answers.
#[derive(Debug, Clone)]
pub enum Reply {
    Json(StatusCode, String),
    Body {
        status: StatusCode,
        content_type: &'static str,
        body: Bytes,
        headers: Vec<(&'static str, &'static str)>,
    },
    /// Server-sent events, sent one chunk per element, then ended as `end` says.
    Sse(Vec<String>, SseEnd),
    /// Accepts the request and never answers.
    Hang,
    /// The reply, after a delay: a target that takes its time.
    Late(Duration, Box<Reply>),
    /// Quotes the request's `Authorization` header back, as some targets do: with a success
    /// status in the answer's text (a chat completion, or a chat stream when the request asked
    /// for one), otherwise in the message of OpenAI's error envelope.
    EchoAuthorization(StatusCode),
}

#[derive(Debug, Clone, Copy)]
pub enum SseEnd {
    Close,
    /// Breaks the connection in the middle of the chunked body.
    Cut,
    /// Stays open and silent.
    Hang,
    /// Waits for [`MockTarget::release`], then sends `data: [DONE]` and closes.
    DoneOnRelease,
}

struct MockState {
    received: Mutex<Vec<Recorded>>,
    arrived: Notify,
    replies: Mutex<VecDeque<Reply>>,
    default_reply: Mutex<Reply>,
    /// Signalled when a stream the mock was sending is dropped: the proxy let go of it.
    stream_dropped: Notify,
    /// When set, only these bearer tokens are accepted (the token server's live tokens).
    live_tokens: Mutex<Option<LiveTokens>>,
    release: Notify,
}

/// An in-process target on `127.0.0.1:0`, with `/v1` as its base path.
pub struct MockTarget {
    pub addr: SocketAddr,
    state: Arc<MockState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockTarget {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockTarget {
    pub async fn start() -> Self {
        let state = Arc::new(MockState {
            received: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            replies: Mutex::new(VecDeque::new()),
            default_reply: Mutex::new(Reply::Json(
                StatusCode::OK,
                fixture("openai/chat-completion.json"),
            )),
            stream_dropped: Notify::new(),
            release: Notify::new(),
            live_tokens: Mutex::new(None),
        });
        let app = Router::new()
            .fallback(mock_handler)
            .with_state(state.clone());
        let (addr, server) = serve_on_loopback(app).await;
        Self {
            addr,
            state,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The answer to every request from now on, unless one is queued.
    pub fn always(&self, reply: Reply) {
        *self.state.default_reply.lock().unwrap() = reply;
    }

    /// Accept only bearer tokens in `live`, answering others 401 as OpenAI does.
    pub fn require_tokens(&self, live: LiveTokens) {
        *self.state.live_tokens.lock().unwrap() = Some(live);
    }

    /// The answer to the next request only.
    pub fn once(&self, reply: Reply) {
        self.state.replies.lock().unwrap().push_back(reply);
    }

    pub fn received(&self) -> Vec<Recorded> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn last(&self) -> Recorded {
        self.received()
            .pop()
            .expect("the target received no request")
    }

    /// Waits until the target has received `n` requests in all.
    pub async fn wait_for_requests(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = self.state.arrived.notified();
                if self.state.received.lock().unwrap().len() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .expect("the target did not receive the requests in time");
    }

    /// Lets a stream waiting with [`SseEnd::DoneOnRelease`] finish.
    pub fn release(&self) {
        self.state.release.notify_one();
    }

    /// Waits until a stream the target was sending has been dropped by the proxy.
    pub async fn wait_for_stream_drop(&self) {
        tokio::time::timeout(
            Duration::from_secs(10),
            self.state.stream_dropped.notified(),
        )
        .await
        .expect("the proxy kept the upstream stream open");
    }
}

async fn mock_handler(State(state): State<Arc<MockState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let authorization = parts.headers.get(header::AUTHORIZATION).cloned();
    let asked_stream = serde_json::from_slice::<Value>(&body).is_ok_and(|b| b["stream"] == true);
    state.received.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts.headers,
        body,
    });
    state.arrived.notify_waiters();
    if let Some(live) = state.live_tokens.lock().unwrap().as_ref() {
        let presented = parts_authorization(&state);
        if !presented.is_some_and(|token| live.lock().unwrap().contains(&token)) {
            let body = r#"{"error":{"message":"Invalid or expired token.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
            let mut response = (StatusCode::UNAUTHORIZED, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return response;
        }
    }
    let reply = state
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| state.default_reply.lock().unwrap().clone());
    let reply = match reply {
        Reply::Late(delay, reply) => {
            tokio::time::sleep(delay).await;
            *reply
        }
        reply => reply,
    };
    let reply = match reply {
        Reply::EchoAuthorization(status) => echoing(status, authorization.as_ref(), asked_stream),
        reply => reply,
    };
    match reply {
        Reply::Json(status, body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
                .headers_mut()
                .insert("x-request-id", HeaderValue::from_static("req_mock_1"));
            response.headers_mut().insert(
                "x-ratelimit-remaining-requests",
                HeaderValue::from_static("99"),
            );
            response.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_static("target-session=1"),
            );
            response
        }
        Reply::Body {
            status,
            content_type,
            body,
            headers,
        } => {
            let mut response = (status, body).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, HeaderValue::from_static(value));
            }
            response
        }
        Reply::Sse(events, end) => {
            let guard = DropSignal(state.clone());
            let mut response = Body::from_stream(sse_body(events, end, guard)).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            response
                .headers_mut()
                .insert("x-request-id", HeaderValue::from_static("req_mock_stream"));
            response
        }
        Reply::Hang => std::future::pending().await,
        Reply::Late(..) => unreachable!("a late reply was unwrapped above"),
        Reply::EchoAuthorization(_) => unreachable!("an echo was turned into its reply above"),
    }
}

/// The reply of [`Reply::EchoAuthorization`] to a request that sent `authorization`.
fn echoing(status: StatusCode, authorization: Option<&HeaderValue>, stream: bool) -> Reply {
    let quoted = format!(
        "you sent {}",
        authorization.map_or_else(String::new, |v| String::from_utf8_lossy(v.as_bytes())
            .into())
    );
    let usage = serde_json::json!({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2});
    if !status.is_success() {
        let error = serde_json::json!({"error": {"message": format!("Incorrect API key: {quoted}"),
            "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
        return Reply::Json(status, error.to_string());
    }
    if !stream {
        let completion = serde_json::json!({"id": "chatcmpl-echo", "object": "chat.completion",
            "created": 1, "model": "m", "usage": usage, "choices": [{"index": 0,
            "message": {"role": "assistant", "content": quoted}, "finish_reason": "stop"}]});
        return Reply::Json(status, completion.to_string());
    }
    let chunk = |delta: Value, finish: Value| {
        let mut chunk = serde_json::json!({"id": "chatcmpl-echo", "object": "chat.completion.chunk",
            "created": 1, "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        if !finish.is_null() {
            chunk["usage"] = usage.clone();
        }
        format!("data: {chunk}\n\n")
    };
    Reply::Sse(
        vec![
            chunk(
                serde_json::json!({"role": "assistant", "content": quoted}),
                Value::Null,
            ),
            chunk(serde_json::json!({}), "stop".into()),
            "data: [DONE]\n\n".into(),
        ],
        SseEnd::Close,
    )
}

/// The bearer token of the request just recorded.
fn parts_authorization(state: &MockState) -> Option<String> {
    let received = state.received.lock().unwrap();
    let value = received
        .last()?
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    value.strip_prefix("Bearer ").map(str::to_owned)
}

struct DropSignal(Arc<MockState>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.stream_dropped.notify_one();
    }
}

fn sse_body(
    events: Vec<String>,
    end: SseEnd,
    guard: DropSignal,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let events = stream::iter(events.into_iter().map(|e| Ok(Bytes::from(e))));
    let tail = stream::once(async move {
        let guard = guard;
        match end {
            SseEnd::Close => None,
            SseEnd::Cut => Some(Err(std::io::Error::other("connection cut by the mock"))),
            SseEnd::Hang => std::future::pending().await,
            SseEnd::DoneOnRelease => {
                guard.0.release.notified().await;
                Some(Ok(Bytes::from_static(b"data: [DONE]\n\n")))
            }
        }
    })
    .filter_map(|item| async move { item });
    events.chain(tail)
}

/// A target that answers every connection with the same raw bytes and closes: for answers
/// no well-behaved HTTP server would send (bodies shorter than declared, garbage).
pub async fn raw_target(response: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut seen = Vec::new();
                // Read the request head and a declared body, then answer.
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    if let Some(head_end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= head_end + 4 + length {
                            break;
                        }
                    }
                }
                let _ = socket.write_all(response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/v1")
}

/// A URL on which nothing listens.
pub async fn refused_target() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/v1")
}

/// Validates `instance` against a schema of OpenAI's spec (the fixture extracted from it).
pub fn assert_schema(schema: &str, instance: &Value) {
    type Validators = Mutex<std::collections::HashMap<String, Arc<jsonschema::Validator>>>;
    static SPEC: OnceLock<Value> = OnceLock::new();
    static VALIDATORS: OnceLock<Validators> = OnceLock::new();
    let validator = VALIDATORS
        .get_or_init(Validators::default)
        .lock()
        .unwrap()
        .entry(schema.to_owned())
        .or_insert_with(|| {
            let spec =
                SPEC.get_or_init(|| serde_json::from_str(&fixture("openai-schemas.json")).unwrap());
            let mut root = spec.clone();
            root["$ref"] = Value::String(format!("#/components/schemas/{schema}"));
            Arc::new(jsonschema::draft202012::new(&root).unwrap())
        })
        .clone();
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not a valid {schema}: {errors:#?}\n{instance:#}"
    );
}

/// Checks an error body is OpenAI's envelope with all four keys, and returns its `error`.
pub fn assert_envelope(body: &Value) -> &Value {
    assert_schema("ErrorResponse", body);
    let error = &body["error"];
    for key in ["message", "type", "param", "code"] {
        assert!(
            error.as_object().unwrap().contains_key(key),
            "missing {key}: {body}"
        );
    }
    error
}

/// Splits an SSE body into its `data:` payloads.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(str::to_owned)
        .collect()
}

/// Tokens the mock token server issued and has not revoked; the mock target accepts only these.
pub type LiveTokens = Arc<Mutex<std::collections::HashSet<String>>>;

pub const CLIENT_ID: &str = "proxy-client";
pub const CLIENT_SECRET: &str = "client-secret-must-never-leak-7f3a";
pub const SCOPE: &str = "api://corp-llm/.default";
pub const AUDIENCE: &str = "https://llm.corp.example";

/// Where the mock token server accepts client credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptAuth {
    Basic,
    Form,
    Either,
}

/// A failure the mock token server answers with instead of a token.
#[derive(Debug, Clone)]
pub enum TokenFailure {
    Status(u16, &'static str),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with JSON but no access_token.
    NoToken,
    /// This status with an HTML page that echoes the request's `Authorization` header and body,
    /// as a crashing server's debug page does.
    EchoRequest(u16),
}

/// One token request as the mock token server saw it.
#[derive(Debug, Clone)]
pub struct TokenAttempt {
    pub basic: Option<(String, String)>,
    pub form: std::collections::HashMap<String, String>,
    pub content_type: String,
}

pub struct TokenServerState {
    pub accept: Mutex<AcceptAuth>,
    /// `expires_in` to send; `None` leaves it out.
    pub lifetime: Mutex<Option<u64>>,
    pub token_type: Mutex<&'static str>,
    /// While set, every request fails this way.
    pub failure: Mutex<Option<TokenFailure>>,
    /// Issue tokens the target will not accept (to test a second 401).
    pub issue_dead: Mutex<bool>,
    pub issued: Mutex<Vec<String>>,
    pub attempts: Mutex<Vec<TokenAttempt>>,
    pub live: LiveTokens,
    changed: Notify,
}

/// An OAuth 2.0 token server on `127.0.0.1:0` that checks the grant, client authentication,
/// scope and audience, and issues distinct tokens with a chosen lifetime.
pub struct MockTokenServer {
    pub url: String,
    pub state: Arc<TokenServerState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockTokenServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockTokenServer {
    pub async fn start(lifetime: Option<u64>) -> Self {
        let state = Arc::new(TokenServerState {
            accept: Mutex::new(AcceptAuth::Either),
            lifetime: Mutex::new(lifetime),
            token_type: Mutex::new("Bearer"),
            failure: Mutex::new(None),
            issue_dead: Mutex::new(false),
            issued: Mutex::new(Vec::new()),
            attempts: Mutex::new(Vec::new()),
            live: Arc::new(Mutex::new(std::collections::HashSet::new())),
            changed: Notify::new(),
        });
        let app = Router::new()
            .route("/oauth2/token", axum::routing::post(token_handler))
            .with_state(state.clone());
        let (addr, server) = serve_on_loopback(app).await;
        Self {
            url: format!("http://{addr}/oauth2/token"),
            state,
            server,
        }
    }

    pub fn issued(&self) -> Vec<String> {
        self.state.issued.lock().unwrap().clone()
    }

    pub fn attempts(&self) -> Vec<TokenAttempt> {
        self.state.attempts.lock().unwrap().clone()
    }

    pub fn fail(&self, failure: Option<TokenFailure>) {
        *self.state.failure.lock().unwrap() = failure;
    }

    /// Makes the target reject a token from now on, as if it had been revoked.
    pub fn revoke(&self, token: &str) {
        self.state.live.lock().unwrap().remove(token);
    }

    /// Waits until `n` tokens have been issued in all.
    pub async fn wait_for_issued(&self, n: usize) {
        self.wait(|s| s.issued.lock().unwrap().len() >= n, "tokens issued")
            .await;
    }

    /// Waits until `n` token requests have arrived in all.
    pub async fn wait_for_attempts(&self, n: usize) {
        self.wait(|s| s.attempts.lock().unwrap().len() >= n, "token requests")
            .await;
    }

    async fn wait(&self, done: impl Fn(&TokenServerState) -> bool, what: &str) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let changed = self.state.changed.notified();
                if done(&self.state) {
                    return;
                }
                changed.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    }
}

async fn token_handler(
    State(state): State<Arc<TokenServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use base64::Engine;
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    state.attempts.lock().unwrap().push(TokenAttempt {
        basic: basic.clone(),
        form: form.clone(),
        content_type,
    });
    let echo = match *state.failure.lock().unwrap() {
        Some(TokenFailure::EchoRequest(status)) => Some(status),
        _ => None,
    };
    let response = match echo {
        Some(status) => {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            let page = format!(
                "<html>crash {authorization} {}</html>",
                String::from_utf8_lossy(&body)
            );
            let mut response = (StatusCode::from_u16(status).unwrap(), page).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            response
        }
        None => token_response(&state, basic, &form),
    };
    state.changed.notify_waiters();
    response
}

fn token_response(
    state: &TokenServerState,
    basic: Option<(String, String)>,
    form: &std::collections::HashMap<String, String>,
) -> Response {
    let json = |status: u16, body: String| {
        let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    match state.failure.lock().unwrap().clone() {
        Some(TokenFailure::Status(status, body)) => return json(status, body.to_owned()),
        Some(TokenFailure::Garbage) => {
            return (StatusCode::OK, "<html>login page</html>").into_response();
        }
        Some(TokenFailure::NoToken) => {
            return json(200, r#"{"token_type":"Bearer","expires_in":3600}"#.into());
        }
        Some(TokenFailure::EchoRequest(_)) => unreachable!("answered by token_handler"),
        None => {}
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return json(400, r#"{"error":"unsupported_grant_type"}"#.into());
    }
    let accept = *state.accept.lock().unwrap();
    let by_basic = basic
        .as_ref()
        .is_some_and(|(id, secret)| id == CLIENT_ID && secret == CLIENT_SECRET);
    let by_form = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    let accepted = match accept {
        AcceptAuth::Basic => by_basic,
        AcceptAuth::Form => by_form,
        AcceptAuth::Either => by_basic || by_form,
    };
    if !accepted {
        return json(
            401,
            r#"{"error":"invalid_client","error_description":"Client authentication failed."}"#
                .into(),
        );
    }
    if form.get("scope").is_some_and(|s| s != SCOPE) {
        return json(
            400,
            r#"{"error":"invalid_scope","error_description":"The scope is not valid."}"#.into(),
        );
    }
    let mut issued = state.issued.lock().unwrap();
    let token = format!("issued-token-{}-{:08x}", issued.len() + 1, rand_suffix());
    issued.push(token.clone());
    if !*state.issue_dead.lock().unwrap() {
        state.live.lock().unwrap().insert(token.clone());
    }
    let mut body =
        serde_json::json!({"access_token": token, "token_type": *state.token_type.lock().unwrap()});
    if let Some(lifetime) = *state.lifetime.lock().unwrap() {
        body["expires_in"] = lifetime.into();
    }
    json(200, body.to_string())
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}

/// `GET /api/events`, read event by event.
pub struct LiveFeed {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl LiveFeed {
    pub async fn open(proxy: &TestProxy) -> Self {
        let response = proxy.get("/api/events").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let mut feed = Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        };
        // The first stats tick comes at once: the subscription is in place after it.
        feed.next("stats").await;
        feed
    }

    /// The data of the next event named `name`, skipping others.
    pub async fn next(&mut self, name: &str) -> Value {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                while let Some(end) = self.buffer.find("\n\n") {
                    let event: String = self.buffer.drain(..end + 2).collect();
                    let kind = event
                        .lines()
                        .find_map(|l| l.strip_prefix("event: "))
                        .unwrap_or_default();
                    let data: String = event
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: "))
                        .collect();
                    if kind == name {
                        return serde_json::from_str(&data).unwrap();
                    }
                }
                let chunk = self.body.next().await.expect("event stream ended").unwrap();
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {name} event"))
    }

    pub async fn calls(&mut self, n: usize) -> Vec<Value> {
        let mut calls = Vec::new();
        for _ in 0..n {
            calls.push(self.next("call").await);
        }
        calls
    }
}
