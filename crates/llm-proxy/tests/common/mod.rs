//! Test harness: the real proxy on `127.0.0.1:0`, a mock target that records what it receives
//! and fails in each way real endpoints do, and OpenAI schema validation.
#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]

use std::collections::VecDeque;
use std::convert::Infallible;
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
    config.data_dir = std::env::temp_dir().join("llm-proxy-tests");
    config
}

pub fn target_config(endpoint: &str, key: Option<&str>) -> UpstreamConfig {
    UpstreamConfig::Target(TargetConfig {
        endpoint: endpoint.parse().unwrap(),
        credential: match key {
            Some(key) => CredentialConfig::ApiKey(SecretString::from(key.to_owned())),
            None => CredentialConfig::None,
        },
        extra_roots_pem: None,
    })
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
        });
        let app = Router::new()
            .fallback(mock_handler)
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
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
    let reply = state
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| state.default_reply.lock().unwrap().clone());
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
    }
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
    static SPEC: OnceLock<Value> = OnceLock::new();
    let spec = SPEC.get_or_init(|| serde_json::from_str(&fixture("openai-schemas.json")).unwrap());
    let mut root = spec.clone();
    root["$ref"] = Value::String(format!("#/components/schemas/{schema}"));
    let validator = jsonschema::draft202012::new(&root).unwrap();
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

pub fn infallible<T>(value: T) -> Result<T, Infallible> {
    Ok(value)
}
